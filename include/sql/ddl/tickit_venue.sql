-- TICKIT venue, as the Amazon Redshift Getting Started Guide creates it.
CREATE TABLE IF NOT EXISTS {{ target }} (
    venueid smallint not null distkey sortkey,
    venuename varchar(100),
    venuecity varchar(30),
    venuestate char(2),
    venueseats integer
);

-- TICKIT category, as the Amazon Redshift Getting Started Guide creates it.
CREATE TABLE IF NOT EXISTS {{ target }} (
    catid smallint not null distkey sortkey,
    catgroup varchar(10),
    catname varchar(10),
    catdesc varchar(50)
);

-- TICKIT event, as the Amazon Redshift Getting Started Guide creates it.
CREATE TABLE IF NOT EXISTS {{ target }} (
    eventid integer not null distkey,
    venueid smallint not null,
    catid smallint not null,
    dateid smallint not null sortkey,
    eventname varchar(200),
    starttime timestamp
);

-- TICKIT date, as the Amazon Redshift Getting Started Guide creates it.
CREATE TABLE IF NOT EXISTS {{ target }} (
    dateid smallint not null distkey sortkey,
    caldate date not null,
    day character(3) not null,
    week smallint not null,
    month character(5) not null,
    qtr character(5) not null,
    year smallint not null,
    holiday boolean default('N')
);

-- NOAA daily weather for Seattle (vega-datasets seattle-weather.csv).
CREATE TABLE IF NOT EXISTS {{ target }} (
    date          date,
    precipitation decimal(6, 1),
    temp_max      decimal(5, 1),
    temp_min      decimal(5, 1),
    wind          decimal(5, 1),
    weather       varchar(16),
    ingest_file_id varchar(64)  -- the register file_id of the file that loaded the row
)
DISTSTYLE AUTO
SORTKEY (date);

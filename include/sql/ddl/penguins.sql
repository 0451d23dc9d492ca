-- Palmer penguins (palmerpenguins penguins_raw), columns in file order.
CREATE TABLE IF NOT EXISTS {{ target }} (
    study_name        varchar(16),
    sample_number     integer,
    species           varchar(64),
    region            varchar(16),
    island            varchar(16),
    stage             varchar(32),
    individual_id     varchar(16),
    clutch_completion varchar(3),
    date_egg          date,
    culmen_length_mm  decimal(5, 1),
    culmen_depth_mm   decimal(5, 1),
    flipper_length_mm integer,
    body_mass_g       integer,
    sex               varchar(8),
    delta_15_n        decimal(8, 5),
    delta_13_c        decimal(8, 5),
    comments          varchar(256),
    ingest_file_id    varchar(64)  -- the register file_id of the file that loaded the row
);

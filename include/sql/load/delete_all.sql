-- load_mode replace: the table's rows go in the load's own transaction (not TRUNCATE, which commits
-- implicitly on Redshift: AWS "TRUNCATE").
DELETE FROM {{ target }};

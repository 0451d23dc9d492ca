-- A temporary table shaped like the target, for this session and transaction (AWS "Use a staging
-- table to perform a merge"): the batch's COPYs write it, then its rows go to the target tagged
-- with their file_id.
DROP TABLE IF EXISTS {{ staging }};
CREATE TEMP TABLE {{ staging }} (LIKE {{ target }});

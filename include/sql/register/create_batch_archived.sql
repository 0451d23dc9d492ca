-- Where each loaded file of a batch was archived, for one set-based UPDATE of the register.
DROP TABLE IF EXISTS batch_archived;
CREATE TEMP TABLE batch_archived (
    file_id     VARCHAR(64)   NOT NULL,
    archive_key VARCHAR(1024) NOT NULL
);

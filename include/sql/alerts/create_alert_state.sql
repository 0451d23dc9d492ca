-- Open and resolved incidents of the backlog and freshness alerts: one row per incident, so each
-- alert goes out once when it opens and once (the resolution) when it closes. Redshift enforces no
-- keys: "one open incident per (file_type, kind)" is kept by LOCK + NOT EXISTS in open_alert.sql.
CREATE TABLE IF NOT EXISTS {{ alerts }} (
    file_type   VARCHAR(64)   NOT NULL,
    kind        VARCHAR(20)   NOT NULL,  -- BACKLOG or SILENT
    opened_at   TIMESTAMP     NOT NULL,
    detail      VARCHAR(1024),
    resolved_at TIMESTAMP
);

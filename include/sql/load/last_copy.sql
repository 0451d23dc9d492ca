-- Rows the session's last COPY loaded, and its query id (AWS "PG_LAST_COPY_COUNT", "PG_LAST_COPY_ID").
SELECT pg_last_copy_count(), pg_last_copy_id();

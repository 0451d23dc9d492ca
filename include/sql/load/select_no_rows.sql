-- The table's columns in order (from the cursor description), reading no row.
SELECT * FROM {{ target }} LIMIT 0;

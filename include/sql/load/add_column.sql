-- A column added to a table in the load's transaction: the merge staging table's file order, or a
-- column a file brought (on_schema_change: add_columns). ALTER TABLE ADD COLUMN runs in a transaction
-- block on Redshift tables (not on external tables) and locks the table until the commit (AWS "ALTER TABLE").
ALTER TABLE {{ table }} ADD COLUMN {{ column }} {{ type }};

"""The DAG package's COPY for a ``format: parquet`` file type (``build_copy``), run by psycopg2 with bound
parameters through the Redshift stand-in, loads the real Seattle weather data written to Parquet.

(The stand-in's own Parquet/ORC tests are in ``redshift-local/tests/test_formats.py``.)
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from redshift_ingest.config import FileType
from redshift_ingest.copy_sql import build_copy

WEATHER_CSV = Path(__file__).resolve().parents[3] / "data" / "csv" / "seattle-weather.csv"
WEATHER_DDL = "date date, precipitation float8, temp_max float8, temp_min float8, wind float8, weather varchar(8)"


def test_pipeline_copy_statement_for_a_parquet_file_type(warehouse, settings, landing):
    file_type = FileType.model_validate(
        {
            "name": "seattle_weather_parquet",
            "owner": "analytics",
            "source": {"prefix": "landing/weather-parquet/", "pattern": "*.parquet"},
            "target": {"table": "weather.daily_parquet", "ddl": "ddl/seattle_weather.sql"},
            "format": "parquet",
            "copy_options": {"max_error": 5},
        }
    )
    with pytest.raises(ValueError, match="format parquet takes only max_error and region"):
        FileType.model_validate({**file_type.model_dump(), "copy_options": {"ignore_header": 1}})
    parquet = io.BytesIO()
    pq.write_table(pyarrow.csv.read_csv(WEATHER_CSV), parquet, row_group_size=365)
    key = "landing/weather-parquet/2012.parquet"
    landing.put_object(Bucket=settings.landing_bucket, Key=key, Body=parquet.getvalue())
    copy = build_copy(file_type, table=file_type.target.table, copy_from=f"s3://{settings.landing_bucket}/{key}",
                      iam_role_arn="arn:aws:iam::1:role/r", compression="gzip")  # fmt: skip
    assert "FORMAT AS PARQUET" in copy.sql and "GZIP" not in copy.sql
    try:
        with warehouse.cursor() as cur:
            cur.execute(f"create schema if not exists weather; create table weather.daily_parquet ({WEATHER_DDL})")
            cur.execute(copy.sql, copy.parameters)
            assert cur.rowcount == 1461
            cur.execute("select pg_last_copy_count(), count(*) from weather.daily_parquet")
            assert cur.fetchone() == (1461, 1461)
    finally:
        warehouse.rollback()  # the table goes with the transaction

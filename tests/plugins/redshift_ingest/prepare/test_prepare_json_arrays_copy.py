"""Newline-delimited JSON arrays pass the prepare step unchanged and COPY loads them with a JSONPaths
file, as in AWS's example "Load from JSON arrays using a JSONPaths file": real moto S3, the real
prepare step, the Redshift stand-in's COPY through the product's own COPY builder."""

from __future__ import annotations

import json

from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.copy_sql import build_copy
from redshift_ingest.prepare import prepare_file
from redshift_ingest.tasks import prepare_spec

BUCKET = "example-landing-bucket"
# category_array_data.json of the AWS example, verbatim.
ARRAYS = (
    b'[1,"Sports","MLB","Major League Baseball"]\n'
    b'[2,"Sports","NHL","National Hockey League"]\n'
    b'[3,"Sports","NFL","National Football League"]\n'
    b'[4,"Sports","NBA","National Basketball Association"]\n'
    b'[5,"Concerts","Classical","All symphony, concerto, and choir concerts"]\n'
)
JSONPATHS = {"jsonpaths": ["$[0]", "$[1]", "$[2]", "$[3]"]}


def test_json_arrays_reach_copy_unchanged_and_load(landing, warehouse, settings):
    landing.put_object(Bucket=BUCKET, Key="landing/category/category_array_data.json", Body=ARRAYS)
    landing.put_object(Bucket=BUCKET, Key="config/category_array_jsonpath.json", Body=json.dumps(JSONPATHS))
    base = next(ft for ft in default_file_types() if ft.format == "json")
    ft = FileType.model_validate(
        {
            **base.model_dump(),
            "name": "category_arrays",
            "source": {"prefix": "landing/category/", "pattern": "*.json"},
            "copy_options": {"json_paths": f"s3://{BUCKET}/config/category_array_jsonpath.json"},
        }
    )
    key = "landing/category/category_array_data.json"
    prepared = prepare_file(landing, BUCKET, key, settings.staging_prefix, prepare_spec(ft))
    assert (prepared.copy_from, prepared.staged_keys) == (f"s3://{BUCKET}/{key}", ())
    with warehouse.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE category (catid INT, catgroup VARCHAR(10), catname VARCHAR(10), catdesc VARCHAR(50))"
        )
        copy = build_copy(
            ft, table="category", copy_from=prepared.copy_from, iam_role_arn="arn:aws:iam::123456789012:role/x",
            compression=prepared.compression,
        )  # fmt: skip
        cur.execute(copy.sql, copy.parameters)
        cur.execute("SELECT catid, catname, catdesc FROM category ORDER BY catid")
        loaded = cur.fetchall()
    warehouse.rollback()
    assert loaded[0] == (1, "MLB", "Major League Baseball") and len(loaded) == 5
    assert loaded[4] == (5, "Classical", "All symphony, concerto, and choir concerts")

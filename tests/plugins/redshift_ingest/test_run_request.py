"""``tasks.run_request``: the ``file_id`` / ``force`` a run was triggered with, checked by the run itself
(the run params declare no JSON Schema type, and a conf from the API can carry anything)."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from redshift_ingest.tasks import run_request


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"file_id": "", "force": False}, (None, False)),  # the trigger form untouched: wait for NEW files
        ({"file_id": None, "force": None}, (None, False)),  # a cleared field: the form sends null
        ({}, (None, False)),
        ({"file_id": "  s3://landing/a.csv#v1 ", "force": False}, ("s3://landing/a.csv#v1", False)),
        ({"file_id": "s3://landing/a.csv#v1", "force": True}, ("s3://landing/a.csv#v1", True)),
    ],
)
def test_accepted(params, expected):
    assert run_request(params) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"file_id": 42}, "file_id must be a string .* got a int"),
        ({"file_id": ["s3://landing/a.csv"]}, "file_id must be a string .* got a list"),
        ({"file_id": "s3://landing/a.csv", "force": "true"}, "force must be true or false, got a str"),
        ({"file_id": "s3://landing/a.csv", "force": 1}, "force must be true or false, got a int"),
        ({"file_id": "  ", "force": True}, "force reloads one file: give its file_id too"),
    ],
)
def test_refused_with_a_message(params, message):
    with pytest.raises(AirflowFailException, match=message):
        run_request(params)

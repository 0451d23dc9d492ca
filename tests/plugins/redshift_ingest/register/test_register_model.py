"""The register's statuses and transitions live in one table (``register.model.TRANSITIONS``); every
status change the SQL templates make must be one of them."""

from __future__ import annotations

import re

import pytest

from redshift_ingest import paths
from redshift_ingest.register import TRANSITIONS, FileStatus, allowed

STATUS = r"'([A-Z_]+)'"


def status_changes() -> list[tuple[str, set[str], set[str]]]:
    """(template, statuses it moves from, statuses it moves to) for every UPDATE that sets status."""
    out = []
    for path in sorted((paths.sql_dir() / "register").glob("*.sql")):
        sql = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
        match = re.search(r"SET\s+status\s*=\s*(.*?)(?:,\s*\n|\n\S)", sql, re.DOTALL)
        if not match:
            continue
        to = set(re.findall(STATUS, match.group(1)))
        where = sql[sql.index("WHERE", match.end()) :] if "WHERE" in sql[match.end() :] else ""
        guard = re.findall(r"status\s*(?:=\s*'([A-Z_]+)'|IN\s*\(([^)]*)\))", where)
        frm = {s for single, many in guard for s in ([single] if single else re.findall(STATUS, many))}
        out.append((path.name, frm, to))
    return out


CHANGES = status_changes()


def test_every_status_change_is_guarded_by_its_old_status():
    dynamic = {"claim_file.sql"}  # its from-statuses are a bound parameter, checked in register.claim_file
    for name, frm, to in CHANGES:
        assert to, name
        assert frm or name in dynamic, f"{name} changes status without a WHERE status guard"


@pytest.mark.parametrize(("name", "frm", "to"), CHANGES, ids=[c[0] for c in CHANGES])
def test_every_status_change_is_an_allowed_transition(name, frm, to):
    for old in frm:
        for new in to:
            assert allowed(old, new), f"{name}: {old} -> {new} is not in register.model.TRANSITIONS"


def test_the_table_names_every_status():
    assert set(TRANSITIONS) == set(FileStatus)
    for targets in TRANSITIONS.values():
        assert set(targets) <= set(FileStatus)

"""The least-privilege database users of the pipeline (``include/sql/grants/least_privilege.sql``).

``python -m redshift_ingest.grants [--database dev]`` prints the SQL for the deployed settings and
file types, passwords as ``<password>``; :func:`apply_grants` runs it with the passwords bound.
Tested on the stand-in by ``tests/plugins/redshift_ingest/test_grants.py`` (registration, claim, COPY, the register).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from redshift_ingest.config import FileType, Settings, quote_identifier
from redshift_ingest.sql import render

REGISTER_GROUP = "redshift_ingest_register"
DAGS_GROUP = "redshift_ingest_dags"
REGISTER_USER = "register_file"
DAGS_USER = "ingest_dags"


def grant_statements(
    settings: Settings,
    file_types: Iterable[FileType],
    *,
    database: str,
    register_user: str = REGISTER_USER,
    dags_user: str = DAGS_USER,
    register_group: str = REGISTER_GROUP,
    dags_group: str = DAGS_GROUP,
) -> list[str]:
    """The statements of ``grants/least_privilege.sql``, one SQL string each, identifiers quoted.

    Passwords stay placeholders ``%(register_password)s`` / ``%(dags_password)s``.

    :raises ValueError: a name is not a valid identifier.
    """
    names = (database, register_user, dags_user, register_group, dags_group)
    quoted = [quote_identifier(name) for name in names]
    schemas = sorted({ft.target.table.schema_name for ft in file_types})
    text = render(
        "grants/least_privilege.sql",
        database=quoted[0],
        register_user=quoted[1],
        dags_user=quoted[2],
        register_group=quoted[3],
        dags_group=quoted[4],
        register=settings.register_table.quoted,
        register_schema=quote_identifier(settings.register_table.schema_name),
        target_schemas=[quote_identifier(s) for s in schemas],
    )
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


def apply_grants(conn, statements: list[str], *, register_password: str, dags_password: str) -> None:
    """Run ``statements`` (from :func:`grant_statements`) as the connected superuser; commits.

    Redshift passwords: 8 to 64 characters with an upper- and a lower-case letter and a digit.
    """
    params = {"register_password": register_password, "dags_password": dags_password}
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement, params if "%(" in statement else None)
    conn.commit()


def main(argv: list[str] | None = None) -> int:
    from redshift_ingest.config import default_file_types, default_settings

    parser = argparse.ArgumentParser(prog="python -m redshift_ingest.grants", description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="dev", help="the database name (default dev)")
    args = parser.parse_args(argv)
    for statement in grant_statements(default_settings(), default_file_types(), database=args.database):
        print(
            statement.replace("%(register_password)s", "'<password>'").replace("%(dags_password)s", "'<password>'")
            + ";"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

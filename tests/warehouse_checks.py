"""Read-only questions the tests ask the warehouse; each ends its transaction."""

from __future__ import annotations


def rows_per_file(conn, table: str) -> dict[str | None, int]:
    """Rows of ``table`` (a quoted name) per ``ingest_file_id``, the file that loaded them."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT ingest_file_id, count(*) FROM {table} GROUP BY 1")
        counts = dict(cur.fetchall())
    conn.rollback()
    return counts


def register_history(conn, settings, file_id: str) -> str:
    """The register's ``history`` of ``file_id`` ('' when empty)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT history FROM {settings.register_table.quoted} WHERE file_id = %s", (file_id,))
        value = cur.fetchone()[0]
    conn.rollback()
    return value or ""

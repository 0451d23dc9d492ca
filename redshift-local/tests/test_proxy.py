"""The proxy itself: protocol relaying, DDL rewriting, several statements per Query, concurrency, psql."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading

import psycopg2
import pytest

from redshift_local import RedshiftLocal
from redshift_local.sqltext import quote_literal, rewrite_create_table, unquote_string
from tests.conftest import put


def test_plain_sql_is_relayed(connect):
    with connect().cursor() as cur:
        cur.execute("select 1 + 1, 'x'::text, null::int")
        assert cur.fetchone() == (2, "x", None)
        with pytest.raises(psycopg2.errors.DivisionByZero):
            cur.execute("select 1/0")


def test_copy_from_stdin_and_to_stdout_pass_through(connect, table_name):
    import io

    with connect().cursor() as cur:
        cur.execute(f"create table {table_name} (a int, b text)")
        cur.copy_expert(f"copy {table_name} from stdin with (format csv)", io.StringIO("1,x\n2,y\n"))
        out = io.StringIO()
        cur.copy_expert(f"copy {table_name} to stdout with (format csv)", out)
        assert out.getvalue() == "1,x\n2,y\n"


def test_redshift_ddl(connect, table_name):
    ddl = f"""
        CREATE TABLE IF NOT EXISTS {table_name} (
            id BIGINT IDENTITY(100, 5) ENCODE az64,
            name VARCHAR(MAX) ENCODE zstd,
            label CHARACTER VARYING(MAX),
            note varchar,
            created TIMESTAMPTZ DEFAULT getdate(),
            doc SUPER,
            kind char(1) not null distkey sortkey,
            PRIMARY KEY (id)
        ) DISTSTYLE KEY DISTKEY (kind) COMPOUND SORTKEY (kind, created) BACKUP NO
    """
    with connect().cursor() as cur:
        cur.execute(ddl)
        cur.execute(ddl)  # IF NOT EXISTS
        cur.execute(f"insert into {table_name} (name, kind, doc) values ('n', 'k', '[1]') returning id")
        assert cur.fetchone() == (100,)
        cur.execute(
            "select column_name, data_type, character_maximum_length from information_schema.columns"
            f" where table_name = '{table_name}' order by ordinal_position"
        )
        assert cur.fetchall()[:6] == [
            ("id", "bigint", None),
            ("name", "character varying", 65535),
            ("label", "character varying", 65535),
            ("note", "character varying", 256),
            ("created", "timestamp with time zone", None),
            ("doc", "jsonb", None),
        ]
        cur.execute(f"create table {table_name}_i (a int) diststyle all interleaved sortkey (a)")
        cur.execute(f"create table {table_name}_a (a int) sortkey auto encode auto")
        cur.execute(f"create temp table {table_name}_stage (like {table_name})")
        cur.execute(f"create table {table_name}_ctas diststyle even as select 1 as a")


def test_rewrite_only_touches_redshift_create_table():
    for sql in ["select 'distkey sortkey' from t", "create table t (a int)", "create index i on t (a)"]:
        assert rewrite_create_table(sql) == sql


def test_several_statements_in_one_query(connect, s3, bucket, table_name):
    url = put(s3, bucket, "multi.txt", "1\n2\n")
    conn = connect()
    with conn.cursor() as cur:
        cur.execute(
            f"create table {table_name} (a int) diststyle even; copy {table_name} from '{url}' iam_role default;"
            f" insert into {table_name} values (3); select count(*) from {table_name};"
        )
        assert cur.fetchone() == (3,)  # psycopg2 keeps the last result
        # Stops at the first error and rolls back the implicit transaction, like PostgreSQL.
        with pytest.raises(psycopg2.errors.InternalError_, match="does not exist"):
            cur.execute(
                f"insert into {table_name} values (4); copy {table_name} from 's3://{bucket}/nope' iam_role default;"
            )
        cur.execute(f"select count(*) from {table_name}")
        assert cur.fetchone() == (3,)
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_two_clients_copy_concurrently(redshift_local, s3, bucket, table_name):
    sizes = {f"{table_name}_a": 20000, f"{table_name}_b": 30000}
    for table, size in sizes.items():
        put(s3, bucket, f"{table}.csv", "".join(f"{i},{table}-{i}\n" for i in range(size)))
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(sizes))

    def load(table: str) -> None:
        try:
            conn = psycopg2.connect(redshift_local.dsn())
            with conn, conn.cursor() as cur:
                cur.execute(f"create table {table} (id int, label varchar(40))")
                conn.commit()
                barrier.wait()
                cur.execute(f"copy {table} from 's3://{bucket}/{table}.csv' iam_role default csv")
                cur.execute("select pg_last_copy_count()")
                assert cur.fetchone() == (sizes[table],)
            conn.close()
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(t,)) for t in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    conn = psycopg2.connect(redshift_local.dsn())
    with conn.cursor() as cur:
        for table, size in sizes.items():
            cur.execute(f"select count(*), count(distinct id), min(label) from {table}")
            assert cur.fetchone() == (size, size, f"{table}-0")
    conn.close()


def _raw_startup(port: int, with_messages: bool = False):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(struct.pack("!II", 8, 80877103))  # SSLRequest
    assert sock.recv(1) == b"N"
    sock.sendall(struct.pack("!II", 8, 80877104))  # GSSENCRequest
    assert sock.recv(1) == b"N"
    params = b"user\x00postgres\x00database\x00postgres\x00\x00"
    sock.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
    messages = _read_until(sock, b"Z")
    return (sock, messages) if with_messages else sock


def _read_until(sock: socket.socket, kind: bytes) -> list[tuple[bytes, bytes]]:
    messages, buf = [], b""
    while True:
        while len(buf) >= 5 and len(buf) >= 1 + struct.unpack("!I", buf[1:5])[0]:
            length = struct.unpack("!I", buf[1:5])[0]
            messages.append((buf[:1], buf[5 : 1 + length]))
            buf = buf[1 + length :]
            if messages[-1][0] == kind:
                return messages
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buf += chunk


def _msg(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def test_extended_protocol_is_relayed(redshift_local):
    sock = _raw_startup(redshift_local.port)
    try:
        parse = _msg(b"P", b"\x00select $1::int * 2\x00\x00\x00")
        bind = _msg(b"B", b"\x00\x00\x00\x00\x00\x01" + struct.pack("!i", 2) + b"21" + b"\x00\x00")
        execute = _msg(b"E", b"\x00" + struct.pack("!i", 0))
        sock.sendall(parse + bind + _msg(b"D", b"P\x00") + execute + _msg(b"S", b""))
        messages = _read_until(sock, b"Z")
        kinds = [k for k, _ in messages]
        assert kinds == [b"1", b"2", b"T", b"D", b"C", b"Z"]
        data_row = messages[3][1]
        assert data_row[6:] == b"42"
        sock.sendall(_msg(b"X", b""))
    finally:
        sock.close()


def test_client_disconnect_mid_copy_leaves_nothing(redshift_local, s3, bucket, table_name):
    put(s3, bucket, "big.csv", "".join(f"{i},{'x' * 50}\n" for i in range(200000)))
    setup = psycopg2.connect(redshift_local.dsn())
    setup.autocommit = True
    with setup.cursor() as cur:
        cur.execute(f"create table {table_name} (id int, v varchar(60))")
    sock = _raw_startup(redshift_local.port)
    sql = f"copy {table_name} from 's3://{bucket}/big.csv' iam_role default csv\x00".encode()
    sock.sendall(_msg(b"Q", sql))
    sock.close()  # gone before the result
    with setup.cursor() as cur:
        for _ in range(100):
            cur.execute("select count(*) from pg_stat_activity where query like 'COPY %' and state <> 'idle'")
            if cur.fetchone() == (0,):
                break
            threading.Event().wait(0.1)
        cur.execute(f"select count(*) from {table_name}")
        assert cur.fetchone() == (0,)
        cur.execute("select 1")  # the stand-in still serves
    setup.close()


def test_cancel_request_is_forwarded(redshift_local):
    # Raw sockets: psycopg2's conn.cancel() holds the GIL while it waits, which would block the
    # in-process stand-in (a test artefact; out of process it is fine).
    sock, startup = _raw_startup(redshift_local.port, with_messages=True)
    key_data = next(payload for kind, payload in startup if kind == b"K")
    try:
        sock.sendall(_msg(b"Q", b"select pg_sleep(30)\x00"))
        threading.Event().wait(0.5)
        with socket.create_connection(("127.0.0.1", redshift_local.port)) as cancel:
            cancel.sendall(struct.pack("!II", 16, 80877102) + key_data)
            assert cancel.recv(1) == b""  # closed once forwarded
        messages = _read_until(sock, b"Z")
        error = next(payload for kind, payload in messages if kind == b"E")
        assert b"C57014" in error  # query_canceled
    finally:
        sock.close()


def test_standalone_instance_context_manager(postgres, s3_server):
    with RedshiftLocal(postgres.dsn) as server:
        assert server.port > 0
        assert server.dsn("postgres", "postgres") == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        conn = psycopg2.connect(server.dsn())
        with conn.cursor() as cur:
            cur.execute("select 1")
            assert cur.fetchone() == (1,)
        conn.close()


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_psql_client(redshift_local, s3, bucket, table_name):
    url = put(s3, bucket, "psql.txt", "1|one\n2|two\n")
    script = (
        f"create table {table_name} (a int, b varchar(5)) distkey(a);\n"
        f"copy {table_name}\nfrom '{url}'\niam_role default;\n"
        f"select count(*) from {table_name};\n"
    )
    result = subprocess.run(
        ["psql", redshift_local.dsn(), "-X", "-v", "ON_ERROR_STOP=1", "-At"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["CREATE", "TABLE", "COPY", "2", "2"] or "COPY 2" in result.stdout
    assert "Load into table" in result.stderr  # INFO notice as Redshift prints it


@pytest.mark.parametrize("value", ["plain", "it's", "C:\\dir\\", "a\\b'c", "tab\\t"])
def test_quote_literal_round_trips(value):
    assert unquote_string(quote_literal(value)) == value


def test_error_text_with_backslashes_reaches_the_client_intact(connect, table_name):
    # The error is raised inside the backend session (DO ... RAISE): with standard_conforming_strings
    # off, as on Redshift, a plain literal would eat the backslash.
    with connect().cursor() as cur:
        cur.execute(f"create table {table_name} (a int)")
        with pytest.raises(psycopg2.errors.FeatureNotSupported) as info:
            cur.execute(f"copy {table_name} from 's3://b/x' iam_role default json 'C:\\data'")
    assert r"JSON 'C:\\data' is not supported" in info.value.pgerror  # repr() of the value: intact

"""WarehouseHook: Amazon Redshift over psycopg2, from an Airflow ``postgres`` connection."""

from __future__ import annotations

from typing import Any

import psycopg2
from airflow.providers.common.sql.hooks.sql import DbApiHook

from redshift_ingest.tls import ssl_options


class WarehouseHook(DbApiHook):
    """Talk to Redshift (or the local stand-in) with psycopg2, the driver Redshift supports.

    The postgres provider's ``PostgresHook`` switches to psycopg 3 when it is installed, and psycopg 3
    is not supported on Redshift, so this hook pins psycopg2 while reading the same connection fields
    (host, port, login, password, schema as the database) and these extras:

    - ``iam_role_arn``: the role COPY assumes to read S3 (``IAM_ROLE``), required by COPY;
    - ``sslmode``: libpq's sslmode: ``verify-full`` on Redshift (encrypted, and the server's
      certificate checked against the CA bundle and the host name; ``require`` checks nothing); the
      stand-in answers SSL with "no", so leave it out locally;
    - ``sslrootcert``: path of the CA bundle for ``verify-ca`` / ``verify-full`` (default:
      ``certifi``'s, which holds the Amazon Root CAs Redshift's certificates chain to; see
      :mod:`redshift_ingest.tls`);
    - ``connect_timeout``: seconds (default 10).

    Whether it reaches Redshift or the stand-in is decided by host and port only.

    :param warehouse_conn_id: the Airflow connection id.
    """

    conn_name_attr = "warehouse_conn_id"
    default_conn_name = "redshift_default"
    conn_type = "postgres"
    hook_name = "Redshift (psycopg2)"
    supports_autocommit = True

    def get_conn(self) -> psycopg2.extensions.connection:
        """A new psycopg2 connection (autocommit off). Password never logged.

        :raises psycopg2.OperationalError: the warehouse cannot be reached (or TLS failed).
        :raises ValueError: the ``sslrootcert`` extra names no readable file.
        """
        conn = self.get_connection(self.get_conn_id())
        extra = conn.extra_dejson
        kwargs: dict[str, Any] = {
            "host": conn.host,
            "port": conn.port or 5439,
            "user": conn.login,
            "password": conn.password,
            "dbname": conn.schema or "dev",
            "connect_timeout": int(extra.get("connect_timeout", 10)),
            "application_name": "redshift_ingest",
            "keepalives": 1,
            "keepalives_idle": 60,
        }
        kwargs.update(ssl_options(extra.get("sslmode"), extra.get("sslrootcert")))
        return psycopg2.connect(**{k: v for k, v in kwargs.items() if v is not None})

    @property
    def iam_role_arn(self) -> str:
        """The COPY role from the connection's extras.

        :raises ValueError: the extra ``iam_role_arn`` is missing.
        """
        arn = self.get_connection(self.get_conn_id()).extra_dejson.get("iam_role_arn")
        if not arn:
            raise ValueError(f"connection {self.get_conn_id()!r} has no 'iam_role_arn' extra: COPY needs an IAM role")
        return arn

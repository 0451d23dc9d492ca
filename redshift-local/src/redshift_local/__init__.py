"""A local Amazon Redshift stand-in: PostgreSQL behind a protocol proxy that runs Redshift's
``COPY ... FROM 's3://...'`` itself, records STL_LOAD_ERRORS and accepts Redshift DDL.

Start it with ``python -m redshift_local`` or in process with ``RedshiftLocal``.
"""

from redshift_local.server import RedshiftLocal

__all__ = ["RedshiftLocal"]

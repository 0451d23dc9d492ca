"""TLS to Redshift: libpq's ``sslmode`` and the CA bundle that verifies the server.

``sslmode=require`` encrypts but accepts any server certificate; ``verify-full`` also checks that the
certificate chains to a trusted CA and names the host you connect to (libpq, "SSL Support"). Redshift's
server certificates are issued by ACM and chain to the Amazon Root CAs (AWS, "Configuring security
options for connections": the Redshift CA bundle is the Amazon Trust Services bundle), which are in
``certifi``'s Mozilla bundle: it is the CA file when none is given. Point ``sslrootcert`` at AWS's own
bundle file instead when your policy wants it.
"""

from __future__ import annotations

import os

VERIFYING = frozenset({"verify-ca", "verify-full"})


def ssl_options(sslmode: str | None, sslrootcert: str | None = None) -> dict[str, str]:
    """The psycopg2/libpq keyword arguments for TLS.

    :param sslmode: libpq's sslmode (``disable``, ``prefer``, ``require``, ``verify-ca``,
        ``verify-full``); None leaves libpq's default.
    :param sslrootcert: path of the CA bundle (PEM) for ``verify-ca`` / ``verify-full``; default
        ``certifi``'s bundle, which holds the Amazon Root CAs.
    :returns: ``{"sslmode": ..., "sslrootcert": ...}`` (only what is set).
    :raises ValueError: ``sslrootcert`` names no readable file.
    """
    options: dict[str, str] = {}
    if sslmode:
        options["sslmode"] = sslmode
    if sslmode in VERIFYING and not sslrootcert:
        import certifi

        sslrootcert = certifi.where()
    if sslrootcert:
        if not os.path.isfile(sslrootcert) or not os.access(sslrootcert, os.R_OK):
            raise ValueError(f"sslrootcert {sslrootcert!r} is not a readable file: give the path of the CA bundle")
        options["sslrootcert"] = sslrootcert
    return options

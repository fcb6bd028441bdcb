"""Connection strings for the campus database, from the settings alone.

Every client of the database in lmsd connects through these, to the nodes ``postgres.*`` names
(:meth:`lmsd.settings.PostgresSettings.node_addresses`: the primary first, then each read
replica). Three shapes, for three kinds of client:

* :func:`app_dsn`: a libpq URL with ``sslmode`` (asyncpg, PostgreSQL's tools, lmsd-projector);
* :func:`engine_url` + :func:`connect_args`: SQLAlchemy's asyncpg dialect hands every query
  parameter of its URL to ``asyncpg.connect`` as a keyword, and that has no ``sslmode``, so TLS
  goes in ``connect_args`` instead;
* :func:`ssl_arg`: asyncpg's ``ssl=`` (a mode, or a context that trusts ``postgres.ssl_ca_file``).

User names and passwords are percent-quoted: a password may hold any character.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import quote, urlencode

from lmsd.credentials import Secrets
from lmsd.settings import Settings
from lmsd.settings.addresses import join_host_port

PRIMARY = 0


def _url(scheme: str, settings: Settings, user: str, password: str, node: int, database: str | None) -> str:
    pg = settings.postgres
    host, port = pg.node_addresses()[node]
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"{scheme}://{auth}@{join_host_port(host, port)}/{quote(database or pg.database, safe='')}"


def app_dsn(settings: Settings, secrets: Secrets, node: int = PRIMARY) -> str:
    """The application role's libpq URL for node ``node`` (0: the primary, n: replica n)."""
    url = _url("postgresql", settings, settings.postgres.user, secrets.postgres_password, node, None)
    return f"{url}?{urlencode({'sslmode': settings.postgres.sslmode})}"


def engine_url(settings: Settings, secrets: Secrets, node: int = PRIMARY) -> str:
    """The application role's SQLAlchemy URL (asyncpg driver); pair it with :func:`connect_args`."""
    return _url("postgresql+asyncpg", settings, settings.postgres.user, secrets.postgres_password, node, None)


def ssl_arg(settings: Settings) -> str | ssl.SSLContext:
    """asyncpg's ``ssl=``: the sslmode itself, or a context that verifies against the CA file."""
    pg = settings.postgres
    if not pg.ssl_ca_file:
        return pg.sslmode
    context = ssl.create_default_context(cafile=pg.ssl_ca_file)
    context.check_hostname = pg.sslmode == "verify-full"  # verify-ca: the chain, not the name
    return context


def connect_args(settings: Settings, **extra: Any) -> dict[str, Any]:
    """``create_async_engine(..., connect_args=...)``: TLS as the settings say, plus ``extra``."""
    return {"ssl": ssl_arg(settings), **extra}


def replica_count(settings: Settings) -> int:
    """How many read replicas the settings name (nodes after the primary)."""
    return len(settings.postgres.node_addresses()) - 1

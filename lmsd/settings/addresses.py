"""Where the database and the bus are: PostgreSQL and NATS addresses, ports and TLS.

The defaults are the embedded profile's: both servers on loopback, without TLS, PostgreSQL's read
replicas on the ports after the primary's. The embedded runtime starts its servers on these
ports (always on loopback); every client in the core (:mod:`lmsd.db.dsn`,
:mod:`lmsd.events.connection`) connects to whatever these settings say, so another profile
(Compose, Helm, a managed database) only changes settings.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

Port = int
LOOPBACK = "127.0.0.1"  # the embedded profile's servers listen here and nowhere else

# libpq's sslmode values (https://www.postgresql.org/docs/current/libpq-ssl.html).
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def check_port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is outside 1..65535")
    return value


def check_host(value: str) -> str:
    """A host name or an IP address (IPv6 without brackets); refused when empty."""
    value = value.strip()
    if not value:
        raise ValueError("the host is empty: give a host name or an IP address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a host name or an IP address")
    return value.lower()


def split_node(value: str) -> tuple[str, int]:
    """``"db-1.example.edu:5432"`` or ``"[2001:db8::1]:5432"`` -> (host, port), checked."""
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if sep and rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":")
    if not port_text.isdigit():
        raise ValueError(f"node {value!r} is not host:port (IPv6: [address]:port)")
    return check_host(host), check_port(int(port_text))


def join_host_port(host: str, port: int) -> str:
    """The ``host:port`` of a URL: an IPv6 address goes in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class PostgresSettings(BaseModel):
    host: str = Field(LOOPBACK, description="Host of the primary (the embedded server listens on loopback only).")
    port: Port = Field(8832, description="Port of the primary; the embedded server listens on it.")
    sslmode: SslMode = Field("disable", description="libpq sslmode of every connection to the database.")
    ssl_ca_file: str = Field(
        "", description="CA certificate (PEM) that verifies the server (sslmode verify-ca or verify-full)."
    )
    nodes: list[str] = Field(
        default_factory=list,
        description="host:port of the primary, then of each read replica, for a database lmsd does not run; "
        "empty: host:port and the embedded replicas (port + n).",
    )
    database: str = "lmsd"
    user: str = Field("lmsd", description="Role that owns the database and runs the API.")
    system_user: str = Field("lmsd", description="OS account PostgreSQL runs as when lmsd runs as root.")
    extra_migrations: list[str] = Field(
        default_factory=list,
        description="Extra Alembic version folders (used to test failing upgrades).",
    )
    replicas: int = Field(
        0, ge=0, le=8, description="Streaming read replicas; replica n (1-based) listens on port + n."
    )
    max_replica_lag_ms: int = Field(
        5000, ge=0, description="A replica further behind than this serves no reads (primary does)."
    )

    _port = field_validator("port")(classmethod(lambda cls, v: check_port(v)))
    _host = field_validator("host")(classmethod(lambda cls, v: check_host(v)))

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, value: list[str]) -> list[str]:
        return [join_host_port(*split_node(node)) for node in value]

    @model_validator(mode="after")
    def _one_source_of_replicas(self) -> PostgresSettings:
        if self.nodes and self.replicas:
            raise ValueError(
                "postgres.nodes lists the servers of a database lmsd does not run and postgres.replicas "
                "starts embedded ones: set only one"
            )
        if self.ssl_ca_file and self.sslmode not in ("verify-ca", "verify-full"):
            raise ValueError("postgres.ssl_ca_file is used only with sslmode verify-ca or verify-full")
        return self

    def replica_ports(self) -> list[int]:
        """Ports the embedded replicas listen on (none when ``nodes`` is given)."""
        return [self.port + n for n in range(1, self.replicas + 1)]

    def node_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of the primary first, then of each read replica."""
        if self.nodes:
            return [split_node(node) for node in self.nodes]
        return [(self.host, self.port), *((self.host, port) for port in self.replica_ports())]


class NatsSettings(BaseModel):
    host: str = Field(LOOPBACK, description="Host of the NATS server (the embedded one listens on loopback only).")
    port: Port = 8842
    monitor_port: Port = Field(8843, description="The embedded server's monitoring port (loopback).")
    tls: bool = Field(False, description="Connect with TLS (tls://); the embedded server has none.")
    tls_ca_file: str = Field("", description="CA certificate (PEM) that verifies the server; empty: the system's.")
    max_store_mb: int = Field(10240, ge=64)

    _ports = field_validator("port", "monitor_port")(classmethod(lambda cls, v: check_port(v)))
    _host = field_validator("host")(classmethod(lambda cls, v: check_host(v)))

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> NatsSettings:
        if self.tls_ca_file and not self.tls:
            raise ValueError("nats.tls_ca_file is used only with nats.tls = true")
        return self

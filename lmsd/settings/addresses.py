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
    bin_dir: str = Field(
        "", description="Folder of PostgreSQL's binaries lmsd runs (postgres, initdb, pg_config…); "
        "empty: the pgserver wheel's. Point it at a PostgreSQL that has Citus Data's packages for Citus."
    )
    citus_workers: int = Field(
        0, ge=0, le=16, description="Citus workers the embedded runtime runs beside the coordinator "
        "(the primary); 0: plain PostgreSQL (docs/citus.md)."
    )
    citus_worker_port: int = Field(
        0, ge=0, le=65535, description="Port of the first embedded Citus worker; worker i uses port + i - 1. "
        "0: postgres.port + 20."
    )
    citus_shard_count: int = Field(
        32, ge=1, le=4096, description="Shards per distributed table, fixed when a table is distributed: "
        "the most workers its rows can ever spread over."
    )
    citus_worker_nodes: list[str] = Field(
        default_factory=list,
        description="host:port of each Citus worker of a cluster lmsd does not run (Compose, Helm); "
        "non-empty: these are the workers and citus_workers stays 0.",
    )

    _port = field_validator("port")(classmethod(lambda cls, v: check_port(v)))
    _host = field_validator("host")(classmethod(lambda cls, v: check_host(v)))

    @field_validator("nodes", "citus_worker_nodes")
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
        self._check_citus()
        return self

    def _check_citus(self) -> None:
        if self.citus_worker_nodes and self.citus_workers:
            raise ValueError(
                "postgres.citus_worker_nodes lists the workers of a cluster lmsd does not run and "
                "postgres.citus_workers starts embedded ones: set only one"
            )
        if self.citus_enabled and (self.replicas or len(self.nodes) > 1):
            raise ValueError(
                "read replicas with Citus are not supported yet (each node would need its own "
                "streaming replicas): set postgres.replicas to 0 or drop the Citus workers"
            )
        last = self.first_worker_port + self.citus_workers - 1
        if self.citus_workers and last > 65535:
            raise ValueError(f"Citus worker ports {self.first_worker_port}..{last} go past 65535")
        if self.citus_workers and self.first_worker_port <= self.port <= last:
            raise ValueError(
                f"postgres.port {self.port} is among the Citus workers' ports {self.first_worker_port}..{last}"
            )

    def replica_ports(self) -> list[int]:
        """Ports the embedded replicas listen on (none when ``nodes`` is given)."""
        return [self.port + n for n in range(1, self.replicas + 1)]

    @property
    def citus_enabled(self) -> bool:
        """PostgreSQL runs as a Citus cluster: the primary is the coordinator of some workers."""
        return bool(self.citus_workers or self.citus_worker_nodes)

    @property
    def first_worker_port(self) -> int:
        return self.citus_worker_port or self.port + 20

    def citus_worker_ports(self) -> list[int]:
        """Ports the embedded Citus workers listen on (worker i, 1-based, on the (i-1)-th)."""
        return [self.first_worker_port + i for i in range(self.citus_workers)]

    def citus_worker_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of each Citus worker, whichever way they are given (none: no Citus)."""
        if self.citus_worker_nodes:
            return [split_node(node) for node in self.citus_worker_nodes]
        return [(self.host, port) for port in self.citus_worker_ports()]

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

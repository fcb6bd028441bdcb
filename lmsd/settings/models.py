"""The settings model: one class per concern, combined into :class:`Settings`.

Sections about addresses live in :mod:`lmsd.settings.addresses`, the video platform's in
:mod:`lmsd.settings.media`; how the layers are read is :mod:`lmsd.settings.loading`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lmsd.settings.addresses import LOOPBACK, NatsSettings, Port, PostgresSettings, check_port
from lmsd.settings.media import MediaSettings


def default_data_dir() -> Path:
    """Where an install lives when ``--data-dir`` is not given.

    A root install is a system service and lives in ``/var/lib/lmsd``; anyone else gets the
    platform's per-user data dir (``~/.local/share/lmsd`` on Linux).
    """
    env = os.environ.get("LMSD_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/lmsd")
    return Path(platformdirs.user_data_dir("lmsd", appauthor=False))


class CampusSettings(BaseModel):
    id: str = Field("", description="Generated once at install; identifies this campus.")
    name: str = Field("My University", min_length=1, max_length=200)
    host: str = Field("localhost", description="Host name learners use to reach the portal.")
    admin_email: str = "admin@localhost"

    @field_validator("admin_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value.lower()

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", value):
            raise ValueError(f"{value!r} is not a host name")
        return value.lower()


_RATE_BUDGET = r"off|[1-9][0-9]*/(s|m|h)(:[1-9][0-9]*)?"


class GatewaySettings(BaseModel):
    """The Rust gateway (docs/gateway.md). Rate budgets are ``RATE/UNIT[:BURST]`` or ``off``."""

    bind: str = LOOPBACK  # the gateway is the one server an admin may open to the network
    port: Port = 8800
    request_timeout_s: int = Field(30, ge=1, le=3600)
    max_body_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    header_timeout_s: int = Field(10, ge=1, le=300, description="Slow clients get this long for a request head.")
    max_header_bytes: int = Field(16384, ge=8192, le=1024 * 1024)
    balance: Literal["least-connections", "round-robin"] = "least-connections"
    rate_login: str = Field("60/m:60", pattern=_RATE_BUDGET, description="Sign-in attempts per client IP.")
    rate_write: str = Field("50/s:100", pattern=_RATE_BUDGET, description="Writes per user (or IP).")
    rate_read: str = Field("100/s:200", pattern=_RATE_BUDGET, description="Reads per user (or IP).")
    rate_media: str = Field("200/s:400", pattern=_RATE_BUDGET, description="Media files per user (or IP).")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Proxies (IPs/CIDRs) whose X-Forwarded-For is believed."
    )
    public_routes: list[str] = Field(
        default_factory=list, description="Routes under /api and /search without a token; empty: the gateway's list."
    )
    search_upstreams: list[str] = Field(default_factory=list, description="Search service URLs (http://host:port).")
    media_cdn_url: str = Field("", description="Redirect signed /media requests here instead of serving files.")

    _port = field_validator("port")(classmethod(lambda cls, v: check_port(v)))


class ApiSettings(BaseModel):
    port: Port = Field(8810, description="Port of the first API worker; worker i uses port + i.")
    workers: int = Field(2, ge=1, le=64)

    _port = field_validator("port")(classmethod(lambda cls, v: check_port(v)))

    def worker_ports(self) -> list[int]:
        return [self.port + i for i in range(self.workers)]


class EventSettings(BaseModel):
    """The event backbone (docs/events.md)."""

    relay_batch: int = Field(10000, ge=1, le=100000, description="Outbox rows the relay publishes per round.")
    relay_poll_ms: int = Field(
        1000, ge=1, le=60000, description="Relay poll when idle (new rows wake it at once through NOTIFY)."
    )
    outbox_retention_h: float = Field(24.0, gt=0, description="Published outbox rows are kept this long.")
    max_batch: int = Field(1000, ge=1, le=10000, description="Learning events per API request.")
    workers: int = Field(
        1,
        ge=1,
        le=32,
        description="lmsd-projector processes keeping the learning projections live (`projector-0`, …); "
        "each applies several batches at once, and more share the work.",
    )
    xapi_lrs_url: str = Field(
        "", pattern=r"^(https?://[^\s]+)?$", description="Forward xAPI statements to this LRS endpoint (…/xapi/); empty: off."
    )
    xapi_lrs_credentials_file: str = Field(
        "", description="File (mode 0600) holding the LRS's `key:secret` for HTTP Basic auth; empty: none."
    )


class RuntimeSettings(BaseModel):
    restart_backoff_initial_s: float = Field(0.5, gt=0)
    restart_backoff_max_s: float = Field(30.0, gt=0)
    stable_after_s: float = Field(30.0, gt=0, description="Uptime after which back-off resets.")
    start_timeout_s: float = Field(90.0, gt=0)
    stop_timeout_s: float = Field(20.0, gt=0)
    min_free_disk_mb: int = Field(256, ge=0)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    profile: Literal["embedded", "compose", "helm"] = "embedded"
    campus: CampusSettings = Field(default_factory=lambda: CampusSettings())
    gateway: GatewaySettings = Field(default_factory=lambda: GatewaySettings())
    api: ApiSettings = Field(default_factory=lambda: ApiSettings())
    postgres: PostgresSettings = Field(default_factory=lambda: PostgresSettings())
    nats: NatsSettings = Field(default_factory=lambda: NatsSettings())
    events: EventSettings = Field(default_factory=lambda: EventSettings())
    media: MediaSettings = Field(default_factory=lambda: MediaSettings())
    runtime: RuntimeSettings = Field(default_factory=lambda: RuntimeSettings())

    @model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        seen: dict[int, str] = {}
        for owner, port in self.ports():
            if port in seen:
                raise ValueError(f"port {port} is given to both {seen[port]} and {owner}")
            seen[port] = owner
        return self

    def ports(self) -> list[tuple[str, int]]:
        """Every port this install listens on, with the component that owns it."""
        ports = [
            ("PostgreSQL", self.postgres.port),
            *((f"PostgreSQL replica {n}", p) for n, p in enumerate(self.postgres.replica_ports(), 1)),
            *((f"Citus worker {n}", p) for n, p in enumerate(self.postgres.citus_worker_ports(), 1)),
            ("NATS", self.nats.port),
            ("NATS monitoring", self.nats.monitor_port),
        ]
        ports += [(f"API worker {i}", p) for i, p in enumerate(self.api.worker_ports())]
        ports.append(("gateway", self.gateway.port))
        return ports

    @property
    def portal_url(self) -> str:
        host = self.campus.host if self.gateway.bind in ("0.0.0.0", "::") else self.gateway.bind
        return f"http://{host}:{self.gateway.port}/"

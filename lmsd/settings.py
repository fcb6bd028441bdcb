"""One settings object per process, built in layers.

Order, later wins: built-in defaults -> the admin's ``config.toml`` in the data dir (which
``lmsd install`` seeds with the values it generated once, such as the campus id) ->
``LMSD_*`` environment variables (``__`` separates nesting: ``LMSD_API__WORKERS=4``).
Secrets never live here: see :mod:`lmsd.credentials`.

Nothing is read at import time; callers build :class:`Settings` with :func:`load_settings`
and pass it (or parts of it) to the components they start.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lmsd.errors import Invalid

CONFIG_FILE = "config.toml"
ENV_PREFIX = "LMSD_"
Port = int


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


def _check_port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is outside 1..65535")
    return value


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

    bind: str = "127.0.0.1"
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

    _port = field_validator("port")(classmethod(lambda cls, v: _check_port(v)))


class ApiSettings(BaseModel):
    port: Port = Field(8810, description="Port of the first API worker; worker i uses port + i.")
    workers: int = Field(2, ge=1, le=64)

    _port = field_validator("port")(classmethod(lambda cls, v: _check_port(v)))

    def worker_ports(self) -> list[int]:
        return [self.port + i for i in range(self.workers)]


class PostgresSettings(BaseModel):
    port: Port = 8832
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

    _port = field_validator("port")(classmethod(lambda cls, v: _check_port(v)))

    def replica_ports(self) -> list[int]:
        return [self.port + n for n in range(1, self.replicas + 1)]


class NatsSettings(BaseModel):
    port: Port = 8842
    monitor_port: Port = 8843
    max_store_mb: int = Field(10240, ge=64)

    _ports = field_validator("port", "monitor_port")(classmethod(lambda cls, v: _check_port(v)))


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


_LADDER = r"^\d{3,4}p:\d{2,6}(,\d{3,4}p:\d{2,6})*$"


class Pathway(BaseModel):
    """A delivery pathway for HLS: the origin (the gateway's /media) or a CDN in front of it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,32}$", description="PATHWAY-ID in the master playlist.")
    base_url: str = Field(
        pattern=r"^https?://[^\s?#]+/$",
        description="URL that /media/ maps to on this pathway, ending in /, e.g. https://cdn-a.example.edu/media/.",
    )
    signing: Literal["lmsd-hmac", "none"] = Field(
        "lmsd-hmac", description="How URLs are signed: lmsd-hmac (exp/scope/sig, docs/video.md) or none."
    )
    key_file: str = Field("", description="File (0600) with this pathway's HMAC key; empty: the origin's media key.")
    regions: list[str] = Field(default_factory=list, description="Client regions this pathway serves first.")
    health_url: str = Field("", description="Probed every few seconds; a failing pathway is steered to last.")


class MediaSettings(BaseModel):
    """The video platform (docs/video.md)."""

    ffmpeg: str = Field("", description="ffmpeg binary; empty: `ffmpeg` on PATH, else the imageio-ffmpeg one.")
    ffprobe: str = Field("", description="ffprobe binary; empty: `ffprobe` on PATH (Debian's ffmpeg package).")
    max_upload_mb: int = Field(8192, ge=1, description="Largest video upload.")
    allowed_types: list[str] = Field(
        default_factory=lambda: [
            "video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo", "video/mpeg",
        ],
        description="MIME types an upload may declare (its tus `filetype`).",
    )
    upload_expiry_h: float = Field(24.0, gt=0, description="Unfinished uploads are removed after this long.")
    ladder: str = Field(
        "240p:400,360p:800,480p:1400,720p:2800,1080p:5000", pattern=_LADDER,
        description="Renditions as name:video kbps; only those at or below the source are made.",
    )
    audio_kbps: int = Field(128, ge=32, le=512)
    segment_seconds: int = Field(4, ge=1, le=20)
    transcoders: int = Field(1, ge=0, le=32, description="Transcoder processes on this host (0: none).")
    transcode_attempts: int = Field(4, ge=1, le=20, description="Attempts before a job is dead-lettered.")
    transcode_backoff_s: list[int] = Field(default_factory=lambda: [10, 30, 90], min_length=1)
    transcription_model: str = Field(
        "pocketsphinx", pattern=r"^(pocketsphinx|whisper:.+|off)$",
        description="pocketsphinx (English, bundled), whisper:/path/to/ggml-model.bin, or off.",
    )
    url_ttl_s: int = Field(6 * 3600, ge=60, le=7 * 86400, description="Lifetime of signed playback URLs.")
    pathways: list[Pathway] = Field(
        default_factory=list, description="CDN pathways besides the origin (HLS content steering)."
    )
    origin_regions: list[str] = Field(default_factory=list, description="Client regions the origin serves first.")
    region_networks: dict[str, list[str]] = Field(
        default_factory=dict, description="Client region by network: {region: [CIDR, ...]}."
    )
    steering_ttl_s: int = Field(300, ge=10, le=86400)

    @field_validator("pathways")
    @classmethod
    def _unique_pathways(cls, value: list[Pathway]) -> list[Pathway]:
        ids = [p.id for p in value]
        if "origin" in ids or len(set(ids)) != len(ids):
            raise ValueError("pathway ids must be unique and not 'origin'")
        return value

    @field_validator("region_networks")
    @classmethod
    def _networks(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for region, cidrs in value.items():
            for cidr in cidrs:
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    raise ValueError(f"region {region!r}: {cidr!r} is not a network such as 10.0.0.0/8") from None
        return value

    def rungs(self) -> list[tuple[str, int, int]]:
        """The ladder as (name, height, video kbps), smallest first."""
        rungs = []
        for item in self.ladder.split(","):
            name, kbps = item.split(":")
            rungs.append((name, int(name[:-1]), int(kbps)))
        return sorted(rungs, key=lambda r: r[1])


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



def config_path(data_dir: Path) -> Path:
    return data_dir / CONFIG_FILE


def read_config_file(data_dir: Path) -> dict[str, Any]:
    path = config_path(data_dir)
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise Invalid(f"{path} is not valid TOML: {exc}") from None


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings of this process from all layers; raise :class:`Invalid` if wrong."""
    resolved = (data_dir or default_data_dir()).expanduser().resolve()
    layers = _deep_merge(read_config_file(resolved), env_layer(os.environ))
    layers = _deep_merge(layers, overrides)
    layers["data_dir"] = resolved
    try:
        return Settings.model_validate(layers)
    except ValidationError as exc:
        raise Invalid(f"invalid configuration: {_one_line(exc)}") from None


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """``LMSD_API__WORKERS=4`` -> ``{"api": {"workers": "4"}}`` (pydantic converts the type).

    A value that looks like a JSON list or object is decoded, so lists can be set too.
    """
    layer: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "LMSD_DATA_DIR":
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        if keys[0] not in Settings.model_fields:
            continue  # LMSD_* variables of other tools (tests, the gateway) are not ours
        node = layer
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        parsed: Any = value
        if value[:1] in "[{":
            with contextlib.suppress(json.JSONDecodeError):
                parsed = json.loads(value)
        node[keys[-1]] = parsed
    return layer


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def write_config_file(data_dir: Path, values: dict[str, Any]) -> None:
    """Write the admin's layer atomically (validated by the caller)."""
    path = config_path(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # configuring before `lmsd install` is fine
    tmp = path.with_suffix(".tmp")
    header = "# lmsd configuration. Edit with `lmsd config set KEY VALUE`; secrets live elsewhere.\n"
    tmp.write_text(header + tomli_w.dumps(values))
    os.replace(tmp, path)


def validate_config(data_dir: Path, values: dict[str, Any]) -> Settings:
    """Prove that a config file with these values would load (env layer excluded)."""
    try:
        return Settings.model_validate({**values, "data_dir": data_dir})
    except ValidationError as exc:
        raise Invalid(f"invalid configuration: {_one_line(exc)}") from None


def set_config_value(data_dir: Path, dotted_key: str, raw_value: str) -> Settings:
    """Set ``a.b`` in the admin's file after proving the whole result is valid."""
    keys = dotted_key.split(".")
    if not all(keys) or keys[0] == "data_dir":
        raise Invalid(f"{dotted_key!r} is not a setting you can set")
    field_type = _field_for(keys)
    value: Any = _parse_value(raw_value, field_type)
    current = read_config_file(data_dir)
    node = current
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise Invalid(f"{dotted_key!r}: {key} is not a section")
    node[keys[-1]] = value
    validate_config(data_dir, current)
    write_config_file(data_dir, current)
    return load_settings(data_dir)


def _field_for(keys: list[str]) -> Any:
    model: Any = Settings
    annotation: Any = None
    for i, key in enumerate(keys):
        fields = getattr(model, "model_fields", None)
        if fields is None or key not in fields:
            raise Invalid(f"unknown setting {'.'.join(keys[: i + 1])!r} (see `lmsd config show`)")
        annotation = fields[key].annotation
        model = annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        raise Invalid(f"{'.'.join(keys)!r} is a section; set one of its keys")
    return annotation


def _parse_value(raw: str, annotation: Any) -> Any:
    if annotation is int:
        try:
            return int(raw)
        except ValueError:
            raise Invalid(f"{raw!r} is not a whole number") from None
    if annotation is float:
        try:
            return float(raw)
        except ValueError:
            raise Invalid(f"{raw!r} is not a number") from None
    if annotation is bool:
        if raw.lower() in ("true", "yes", "1", "on"):
            return True
        if raw.lower() in ("false", "no", "0", "off"):
            return False
        raise Invalid(f"{raw!r} is not true or false")
    if getattr(annotation, "__origin__", None) is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw

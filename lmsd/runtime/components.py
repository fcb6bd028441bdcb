"""The processes of one embedded install, in start order, as data.

Each component says how to start it, how to tell it is ready, which signal stops it
gracefully and whether the campus is unhealthy without it. The supervisor runs them; `lmsd
status` probes them; later issues add their workers here.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from lmsd.credentials import Secrets
from lmsd.media import tools
from lmsd.runtime import binaries, health, nats, postgres, replica
from lmsd.runtime.paths import RunPaths
from lmsd.settings import Settings

Probe = Callable[[], Awaitable[health.ProbeResult]]


@dataclass
class Component:
    name: str
    label: str
    argv: list[str | Path]
    probe: Probe
    ready: Probe | None = None  # what "started" means, when it differs from healthy
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    required: bool = True
    prepare: Callable[[], object] | None = None  # may return an awaitable (awaited)
    after_ready: Callable[[], Awaitable[None]] | None = None

    def log_file(self, settings: Settings) -> Path:
        return settings.data_dir / "logs" / f"{self.name}.log"


def _http_probe(url: str) -> Probe:
    return lambda: health.probe_http(url)


def _replica(settings: Settings, secrets: Secrets, n: int) -> Component:
    """Read replica n: optional (reads fall back to the primary), started after the primary,
    which its first start copies with pg_basebackup."""
    return Component(
        name=f"postgres-replica-{n}",
        label=f"PostgreSQL replica {n}",
        argv=replica.server_argv(settings, n),
        probe=lambda: replica.probe(settings, secrets, n),
        user=postgres.server_user(settings),
        stop_signal=signal.SIGINT,
        required=False,
        prepare=lambda: replica.prepare(settings, secrets, n),
    )


def build(settings: Settings, secrets: Secrets) -> list[Component]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LMSD_GATEWAY_")}
    base_env["LMSD_DATA_DIR"] = str(settings.data_dir)
    components = [
        Component(
            name="postgres",
            label="PostgreSQL",
            argv=postgres.server_argv(settings),
            probe=lambda: health.probe_postgres(settings, secrets),
            ready=lambda: health.probe_postgres(settings, secrets, require_database=False),
            user=postgres.server_user(settings),
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for clients
            prepare=lambda: postgres.write_config(settings),
            after_ready=lambda: postgres.bootstrap(settings, secrets),
        ),
        Component(
            name="nats",
            label="NATS JetStream",
            argv=nats.server_argv(settings),
            probe=lambda: health.probe_nats(settings, secrets),
            prepare=lambda: nats.write_config(settings, secrets),
        ),
    ]
    components[1:1] = [_replica(settings, secrets, n) for n in range(1, settings.postgres.replicas + 1)]
    for index, port in enumerate(settings.api.worker_ports()):
        components.append(
            Component(
                name=f"api-{index}",
                label=f"API worker {index}",
                argv=[
                    sys.executable, "-m", "lmsd.server",
                    "--data-dir", settings.data_dir,
                    "--port", str(port),
                ],
                probe=_http_probe(f"http://127.0.0.1:{port}/healthz"),
                env=base_env,
            )
        )
    # The event backbone (docs/events.md): the outbox relay and the projections' consumers.
    # Several consumer workers share each durable consumer (JetStream spreads the messages).
    workers = [(f"worker-{n}", f"Event consumers {n}", "lmsd.learning.worker") for n in range(settings.events.workers)]
    for name, label, module in (
        ("relay", "Outbox relay", "lmsd.events.relay"),
        *workers,
        ("media-worker", "Media worker (video state, transcription)", "lmsd.media.worker"),
    ):
        components.append(
            Component(
                name=name,
                label=label,
                argv=[sys.executable, "-m", module, "--data-dir", settings.data_dir, "--name", name],
                probe=lambda name=name: health.probe_heartbeat(RunPaths(settings.data_dir).heartbeat(name)),  # type: ignore[misc]
                env=base_env,
            )
        )
    components += [_transcoder(settings, secrets, base_env, n) for n in range(settings.media.transcoders)]
    components.append(_gateway(settings, secrets, base_env))
    return components


def _transcoder(settings: Settings, secrets: Secrets, base_env: dict[str, str], n: int) -> Component:
    """lmsd-transcoder n (Rust, drives ffmpeg): a worker of the ``transcode`` work queue
    (docs/video.md). NATS credentials reach it as a 0600 file, like the gateway's media key."""
    media = settings.media
    paths = RunPaths(settings.data_dir)
    auth_file = paths.run / "transcoder-nats.json"
    heartbeat = paths.heartbeat(f"transcoder-{n}")
    env = {
        **base_env,
        "LMSD_TRANSCODER_NATS_URL": f"nats://127.0.0.1:{settings.nats.port}",
        "LMSD_TRANSCODER_NATS_AUTH_FILE": str(auth_file),
        "LMSD_TRANSCODER_DATA_DIR": str(settings.data_dir),
        "LMSD_TRANSCODER_FFMPEG": tools.ffmpeg(media),
        "LMSD_TRANSCODER_LADDER": media.ladder,
        "LMSD_TRANSCODER_AUDIO_KBPS": str(media.audio_kbps),
        "LMSD_TRANSCODER_SEGMENT_SECONDS": str(media.segment_seconds),
        "LMSD_TRANSCODER_MAX_ATTEMPTS": str(media.transcode_attempts),
        "LMSD_TRANSCODER_BACKOFF": ",".join(str(s) for s in media.transcode_backoff_s),
        "LMSD_TRANSCODER_HEARTBEAT_FILE": str(heartbeat),
    }

    def prepare() -> None:
        paths.run.mkdir(parents=True, exist_ok=True)
        tmp = auth_file.with_suffix(f".tmp{n}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"user": nats.NATS_USER, "password": secrets.nats_password}, handle)
        os.chmod(tmp, 0o600)
        os.replace(tmp, auth_file)

    return Component(
        name=f"transcoder-{n}",
        label=f"Transcoder {n}",
        argv=[binaries.rust_binary("lmsd-transcoder"), "serve"],
        probe=lambda: health.probe_heartbeat(heartbeat),
        env=env,
        prepare=prepare,
    )


def _gateway(settings: Settings, secrets: Secrets, base_env: dict[str, str]) -> Component:
    """The Rust gateway in front of the API workers (docs/gateway.md).

    The media key reaches it as a 0600 file under run/, never on argv or in the environment
    (both are visible to other users through /proc on some systems).
    """
    gateway = settings.gateway
    paths = RunPaths(settings.data_dir)
    key_file = paths.run / "gateway-media.key"
    upstreams = ",".join(f"http://127.0.0.1:{p}" for p in settings.api.worker_ports())
    env = {
        **base_env,
        "LMSD_GATEWAY_LISTEN": f"{gateway.bind}:{gateway.port}",
        "LMSD_GATEWAY_UPSTREAMS": upstreams,
        "LMSD_GATEWAY_REQUEST_TIMEOUT_SECS": str(gateway.request_timeout_s),
        "LMSD_GATEWAY_MAX_BODY_BYTES": str(gateway.max_body_bytes),
        "LMSD_GATEWAY_HEADER_TIMEOUT_SECS": str(gateway.header_timeout_s),
        "LMSD_GATEWAY_MAX_HEADER_BYTES": str(gateway.max_header_bytes),
        "LMSD_GATEWAY_BALANCE": gateway.balance,
        # Tokens are issued with the portal URL as `iss` (lmsd.server.app).
        "LMSD_GATEWAY_JWT_ISSUER": settings.portal_url.rstrip("/"),
        "LMSD_GATEWAY_RATE_LOGIN": gateway.rate_login,
        "LMSD_GATEWAY_RATE_WRITE": gateway.rate_write,
        "LMSD_GATEWAY_RATE_READ": gateway.rate_read,
        "LMSD_GATEWAY_RATE_MEDIA": gateway.rate_media,
        "LMSD_GATEWAY_MEDIA_DIR": str(paths.media),
        "LMSD_GATEWAY_MEDIA_KEY_FILE": str(key_file),
    }
    optional = {
        "LMSD_GATEWAY_TRUSTED_PROXIES": ",".join(gateway.trusted_proxies),
        "LMSD_GATEWAY_PUBLIC_ROUTES": ",".join(gateway.public_routes),
        "LMSD_GATEWAY_SEARCH_UPSTREAMS": ",".join(gateway.search_upstreams),
        "LMSD_GATEWAY_MEDIA_CDN_URL": gateway.media_cdn_url,
    }
    env.update({name: value for name, value in optional.items() if value})

    def prepare() -> None:
        paths.media.mkdir(parents=True, exist_ok=True)
        paths.run.mkdir(parents=True, exist_ok=True)
        tmp = key_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.media_signing_key)
        os.chmod(tmp, 0o600)
        os.replace(tmp, key_file)

    return Component(
        name="gateway",
        label="Gateway",
        argv=[binaries.rust_binary("lmsd-gateway")],
        probe=lambda: health.probe_http(f"http://127.0.0.1:{gateway.port}/healthz"),
        env=env,
        prepare=prepare,
    )

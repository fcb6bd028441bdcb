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

from lmsd.credentials import Secrets, write_private
from lmsd.db.dsn import app_dsn
from lmsd.events.connection import NATS_USER, nats_url
from lmsd.events.streams import consumer_spec
from lmsd.media import tools
from lmsd.paths import RunPaths
from lmsd.runtime import binaries, citus, health, nats, postgres, replica
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
    together: bool = False  # starts with its neighbours that are too (none needs another up)

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


def citus_worker(settings: Settings, secrets: Secrets, i: int) -> Component:
    """Citus worker i (docs/citus.md): a PostgreSQL of its own, required like the coordinator."""
    port = citus.worker_port(settings, i)
    return Component(
        name=citus.worker_name(i),
        label=f"PostgreSQL worker {i}",
        argv=citus.worker_argv(settings, i),
        probe=lambda: health.probe_postgres(settings, secrets, port=port),
        ready=lambda: health.probe_postgres(settings, secrets, require_database=False, port=port),
        env=citus.server_env(citus.worker_dir(settings, i)),
        user=postgres.server_user(settings),
        stop_signal=signal.SIGINT,
        prepare=lambda: citus.prepare_worker(settings, secrets, i),
        after_ready=lambda: citus.bootstrap_worker(settings, secrets, i),
    )


def build(settings: Settings, secrets: Secrets) -> list[Component]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LMSD_GATEWAY_")}
    base_env["LMSD_DATA_DIR"] = str(settings.data_dir)
    citus_on = settings.postgres.citus_enabled
    # Citus workers start before the coordinator, whose after-start hook registers them.
    components = [citus_worker(settings, secrets, i) for i in range(1, settings.postgres.citus_workers + 1)]
    components += [
        Component(
            name="postgres",
            label="PostgreSQL coordinator" if citus_on else "PostgreSQL",
            argv=postgres.server_argv(settings),
            probe=lambda: health.probe_postgres(settings, secrets),
            ready=lambda: health.probe_postgres(settings, secrets, require_database=False),
            env=citus.server_env(postgres.pgdata(settings)) if citus_on else {},
            user=postgres.server_user(settings),
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for clients
            prepare=lambda: citus.prepare_coordinator(settings, secrets),
            after_ready=lambda: citus.bootstrap_coordinator(settings, secrets),
        ),
        Component(
            name="nats",
            label="NATS JetStream",
            argv=nats.server_argv(settings),
            probe=lambda: health.probe_nats(settings, secrets),
            prepare=lambda: nats.write_config(settings, secrets),
        ),
    ]
    first = settings.postgres.citus_workers + 1  # replicas follow the primary
    components[first:first] = [_replica(settings, secrets, n) for n in range(1, settings.postgres.replicas + 1)]
    services = len(components)  # from here to the gateway: the campus's own processes
    for index, port in enumerate(settings.api.worker_ports()):
        components.append(
            Component(
                name=f"api-{index}",
                label=f"API worker {index}",
                argv=[
                    sys.executable, "-m", "lmsd.app",
                    "--data-dir", settings.data_dir,
                    "--port", str(port),
                ],
                probe=_http_probe(f"http://127.0.0.1:{port}/healthz"),
                env=base_env,
            )
        )
    # The event backbone (docs/events.md): the outbox relay; lmsd-projector (Rust) keeping the
    # learning projections live (several processes share the durable consumer); the xAPI
    # forwarder when the campus forwards statements to an LRS; the media worker.
    components.append(_python_service(settings, base_env, "relay", "Outbox relay", "lmsd.events.relay"))
    components += [_projector(settings, secrets, base_env, n) for n in range(settings.events.workers)]
    if settings.events.xapi_lrs_url:
        components.append(
            _python_service(settings, base_env, "xapi-forwarder", "xAPI forwarder (to the LRS)", "lmsd.learning.worker")
        )
    components.append(
        _python_service(settings, base_env, "media-worker", "Media worker (video state, transcription)", "lmsd.media.worker")
    )
    components += [_transcoder(settings, secrets, base_env, n) for n in range(settings.media.transcoders)]
    for component in components[services:]:
        component.together = True  # each needs only PostgreSQL and NATS
    components.append(_gateway(settings, secrets, base_env))
    return components


def _python_service(settings: Settings, base_env: dict[str, str], name: str, label: str, module: str) -> Component:
    """A long-running Python process of ``lmsd.events.process.run`` (healthy while it beats)."""
    return Component(
        name=name,
        label=label,
        argv=[sys.executable, "-m", module, "--data-dir", settings.data_dir, "--name", name],
        probe=lambda: health.probe_heartbeat(RunPaths(settings.data_dir).heartbeat(name)),
        env=base_env,
    )


def _nats_auth_file(paths: RunPaths) -> Path:
    """Where the Rust services find their NATS credentials (:func:`_write_nats_auth`)."""
    return paths.run / "service-nats.json"


def _write_nats_auth(settings: Settings, secrets: Secrets) -> None:
    """The NATS credentials of the Rust services, as a 0600 JSON file under run/ (never on
    argv or in the environment, both visible to other users through /proc on some systems)."""
    path = _nats_auth_file(RunPaths(settings.data_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps({"user": NATS_USER, "password": secrets.nats_password}))


def _transcoder(settings: Settings, secrets: Secrets, base_env: dict[str, str], n: int) -> Component:
    """lmsd-transcoder n (Rust, drives ffmpeg): a worker of the ``transcode`` work queue
    (docs/video.md)."""
    media = settings.media
    paths = RunPaths(settings.data_dir)
    heartbeat = paths.heartbeat(f"transcoder-{n}")
    env = {
        **base_env,
        "LMSD_TRANSCODER_NATS_URL": nats_url(settings),
        "LMSD_TRANSCODER_NATS_AUTH_FILE": str(_nats_auth_file(paths)),
        "LMSD_TRANSCODER_DATA_DIR": str(settings.data_dir),
        "LMSD_TRANSCODER_FFMPEG": tools.ffmpeg(media),
        "LMSD_TRANSCODER_LADDER": media.ladder,
        "LMSD_TRANSCODER_AUDIO_KBPS": str(media.audio_kbps),
        "LMSD_TRANSCODER_SEGMENT_SECONDS": str(media.segment_seconds),
        "LMSD_TRANSCODER_MAX_ATTEMPTS": str(media.transcode_attempts),
        "LMSD_TRANSCODER_BACKOFF": ",".join(str(s) for s in media.transcode_backoff_s),
        "LMSD_TRANSCODER_HEARTBEAT_FILE": str(heartbeat),
    }
    return Component(
        name=f"transcoder-{n}",
        label=f"Transcoder {n}",
        argv=[binaries.rust_binary("lmsd-transcoder"), "serve"],
        probe=lambda: health.probe_heartbeat(heartbeat),
        env=env,
        prepare=lambda: _write_nats_auth(settings, secrets),
    )


def _projector(settings: Settings, secrets: Secrets, base_env: dict[str, str], n: int) -> Component:
    """lmsd-projector n (Rust): applies learning events to the progress, gradebook and xAPI
    projections (docs/events.md). Its consumer's shape (batch, concurrent batches, attempts
    before a dead letter) comes from the consumer's declaration in lmsd.events.streams."""
    spec = consumer_spec("learning")
    paths = RunPaths(settings.data_dir)
    heartbeat = paths.heartbeat(f"projector-{n}")
    pg_auth = paths.run / "projector-postgres.json"
    env = {
        **base_env,
        "LMSD_PROJECTOR_NATS_URL": nats_url(settings),
        "LMSD_PROJECTOR_NATS_AUTH_FILE": str(_nats_auth_file(paths)),
        "LMSD_PROJECTOR_PG_AUTH_FILE": str(pg_auth),
        "LMSD_PROJECTOR_STREAM": spec.stream,
        "LMSD_PROJECTOR_CONSUMER": spec.name,
        "LMSD_PROJECTOR_BATCH": str(spec.batch),
        "LMSD_PROJECTOR_CONCURRENCY": str(spec.concurrency),
        "LMSD_PROJECTOR_MAX_ATTEMPTS": str(spec.max_attempts),
        "LMSD_PROJECTOR_BASE_URL": settings.portal_url,
        "LMSD_PROJECTOR_HEARTBEAT_FILE": str(heartbeat),
    }

    def prepare() -> None:
        _write_nats_auth(settings, secrets)
        write_private(pg_auth, json.dumps({"dsn": app_dsn(settings, secrets)}))

    return Component(
        name=f"projector-{n}",
        label=f"Projector {n} (learning projections)",
        argv=[binaries.rust_binary("lmsd-projector"), "serve"],
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
        # Tokens are issued with the portal URL as `iss` (lmsd.app.factory).
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
        write_private(key_file, secrets.media_signing_key)

    return Component(
        name="gateway",
        label="Gateway",
        argv=[binaries.rust_binary("lmsd-gateway")],
        probe=lambda: health.probe_http(f"http://127.0.0.1:{gateway.port}/healthz"),
        env=env,
        prepare=prepare,
    )

"""Start-up of a long-running event process (the relay, the forwarder, the media worker):
``python -m <module> --data-dir D`` loads the settings and secrets, writes a heartbeat file every
second (the runtime's health probe) and stops cleanly on SIGTERM/SIGINT. Its connections are in
:mod:`lmsd.events.connection`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import lmsd
from lmsd import credentials
from lmsd.credentials import Secrets
from lmsd.errors import LmsdError
from lmsd.paths import RunPaths
from lmsd.settings import Settings, load_settings


class Heartbeat:
    """``run/<name>.heartbeat``: pid, time and a one-line detail, rewritten every second while the
    service's loop runs (the runtime's health probe reads it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.detail = "starting"

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        beat = {"pid": os.getpid(), "time": time.time(), "version": lmsd.__version__, "detail": self.detail}
        tmp.write_text(json.dumps(beat))
        os.replace(tmp, self.path)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                self.write()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


Main = Callable[[Settings, Secrets, asyncio.Event, Heartbeat], Awaitable[None]]


def run(prog: str, main: Main) -> int:
    """``python -m <prog> --data-dir D``: run ``main`` until SIGTERM/SIGINT sets the stop event."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--name", default=prog.removeprefix("lmsd-"), help="component name (its heartbeat file)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.name} %(levelname)s %(message)s")
    try:
        settings = load_settings(args.data_dir)
        secrets = credentials.load(settings.data_dir)
    except LmsdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    async def body() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        paths = RunPaths(settings.data_dir)
        paths.run.mkdir(parents=True, exist_ok=True)
        heartbeat = Heartbeat(paths.heartbeat(args.name))
        beating = asyncio.create_task(heartbeat.run(stop))
        try:
            await main(settings, secrets, stop, heartbeat)
        finally:
            stop.set()
            await beating
            heartbeat.path.unlink(missing_ok=True)

    asyncio.run(body())
    return 0

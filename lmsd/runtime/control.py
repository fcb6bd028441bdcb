"""The CLI's side of the runtime: start the supervisor detached, ask it things, stop it."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmsd.errors import OperationFailed
from lmsd.paths import RunPaths
from lmsd.runtime import preflight
from lmsd.runtime.process import last_log_line
from lmsd.settings import Settings


def running_pid(settings: Settings) -> int | None:
    """The supervisor's pid when one holds the lock for this data dir, else None."""
    paths = RunPaths(settings.data_dir)
    if not paths.lock.exists():
        return None
    fd = os.open(paths.lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            return int(paths.pid.read_text().strip())
        except (OSError, ValueError):
            return -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting for its parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def read_state(settings: Settings) -> dict[str, Any]:
    try:
        data = json.loads(RunPaths(settings.data_dir).state.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def start(settings: Settings, on_progress: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Start the supervisor in the background and wait until every component is healthy.

    Returns the supervisor's pid. Raises OperationFailed with the reason when it does not
    come up; in that case nothing is left running.
    """
    preflight.check_all(settings)
    paths = RunPaths(settings.data_dir)
    paths.run.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    paths.state.unlink(missing_ok=True)
    log = open(paths.logs / "supervisor.log", "ab")  # noqa: SIM115 - the child keeps it
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lmsd.runtime.supervisor", "--data-dir", str(settings.data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the terminal that ran `lmsd up`
        )
    finally:
        log.close()
    deadline = time.monotonic() + settings.runtime.start_timeout_s * 3
    while time.monotonic() < deadline:
        state = read_state(settings)
        if on_progress and state:
            on_progress(state)
        if state.get("pid") == proc.pid and state.get("state") == "running":
            return proc.pid
        code = proc.poll()
        if code is not None:
            state = read_state(settings)
            reason = state.get("error") or last_log_line(paths.logs / "supervisor.log").removeprefix("error: ")
            raise OperationFailed(f"the stack did not start: {reason or f'exit code {code}'}")
        time.sleep(0.2)
    proc.terminate()
    proc.wait(60)
    raise OperationFailed("the stack did not become healthy in time; see `lmsd logs`")


def stop(settings: Settings, timeout: float | None = None) -> bool:
    """Stop the supervisor and its children gracefully. False when it was not running."""
    pid = running_pid(settings)
    if pid is None:
        return False
    if pid > 0:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
    limit = timeout or settings.runtime.stop_timeout_s * (3 + settings.api.workers)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        # the lock is released as the supervisor's last act; it has stopped once its process is gone
        if running_pid(settings) is None and not (pid > 0 and _alive(pid)):
            return True
        time.sleep(0.1)
    if pid > 0:
        os.kill(pid, signal.SIGKILL)  # children follow by PR_SET_PDEATHSIG
    raise OperationFailed(f"the supervisor (pid {pid}) did not stop in {limit:.0f}s; killed it")


async def _request(settings: Settings, payload: dict[str, str], timeout: float) -> dict[str, Any]:
    path = RunPaths(settings.data_dir).control
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 5)
    writer.write(json.dumps(payload).encode() + b"\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), timeout)
    writer.close()
    reply: dict[str, Any] = json.loads(line or b"{}")
    return reply


def command(settings: Settings, op: str, component: str = "", timeout: float = 120) -> dict[str, Any]:
    """Send one control operation (pause, resume, status, shutdown) to the running supervisor."""
    if running_pid(settings) is None:
        raise OperationFailed("lmsd is not running (start it with `lmsd up`)")
    try:
        reply = asyncio.run(_request(settings, {"op": op, "component": component}, timeout))
    except (TimeoutError, OSError, ValueError) as exc:
        raise OperationFailed(f"cannot reach the supervisor: {exc}") from None
    if not reply.get("ok"):
        raise OperationFailed(str(reply.get("error", "the supervisor refused")))
    return reply

"""Starting one child process the way the runtime wants every child started."""

from __future__ import annotations

import asyncio
import ctypes
import os
import pwd
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to SIGTERM this child when the supervisor dies, even by kill -9: no orphans."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def user_env(user: str | None, env: Mapping[str, str]) -> dict[str, str]:
    merged = dict(env)
    if user is not None:
        entry = pwd.getpwnam(user)
        merged.update(HOME=entry.pw_dir or "/", USER=user, LOGNAME=user)
    return merged


async def spawn(
    argv: Sequence[str | Path],
    *,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> asyncio.subprocess.Process:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    base = dict(os.environ if env is None else env)
    log = open(log_file, "ab", buffering=0)  # noqa: SIM115 - handed to the child
    try:
        return await asyncio.create_subprocess_exec(
            *[str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=user_env(user, base),
            cwd=str(cwd) if cwd else None,
            user=user,
            group=pwd.getpwnam(user).pw_gid if user else None,
            extra_groups=[] if user else None,
            preexec_fn=_die_with_parent,
        )
    finally:
        log.close()


def run_tool(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a short-lived tool (initdb, pg_dump...) and capture its output."""
    base = dict(os.environ if env is None else env)
    return subprocess.run(
        [str(a) for a in argv],
        env=user_env(user, base),
        user=user,
        group=pwd.getpwnam(user).pw_gid if user else None,
        extra_groups=[] if user else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

def last_log_line(path: Path) -> str:
    """The last non-empty line of a log (read from its last 4 KiB): a one-line reason."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4096))
            lines = [ln for ln in handle.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""

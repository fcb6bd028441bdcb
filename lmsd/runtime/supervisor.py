"""The supervisor: the one long-running parent of an embedded install.

It starts the components in order, waiting for each to pass its real health probe (a run of
components marked ``together``, the campus's own services, starts at once and is waited for as a
whole: none of them needs another to be up, only the servers before them); restarts a
child that dies, with exponential back-off that resets once the child has been up for a while;
records pids and restart counts in ``run/state.json`` for `lmsd status`; answers a small JSON
control protocol on ``run/control.sock`` (pause/resume a component for a consistent backup);
and on SIGTERM/SIGINT stops the children in reverse order (a ``together`` run at once), each with
its graceful signal.

Children get PR_SET_PDEATHSIG, so even a kill -9 of the supervisor leaves no orphan.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import inspect
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmsd import credentials
from lmsd.errors import LmsdError, OperationFailed
from lmsd.paths import RunPaths
from lmsd.runtime import components as components_mod
from lmsd.runtime.components import Component
from lmsd.runtime.process import last_log_line, spawn
from lmsd.settings import Settings, load_settings


@dataclass
class Child:
    component: Component
    proc: asyncio.subprocess.Process | None = None
    state: str = "pending"
    restarts: int = 0
    started_at: float = 0.0
    last_exit: str = ""
    paused: bool = False
    task: asyncio.Task[None] | None = None
    ready: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.component.label,
            "required": self.component.required,
            "pid": self.proc.pid if self.proc and self.proc.returncode is None else None,
            "state": self.state,
            "restarts": self.restarts,
            "started_at": self.started_at,
            "last_exit": self.last_exit,
        }


def describe_exit(code: int | None) -> str:
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"



class Supervisor:
    def __init__(self, settings: Settings, components: list[Component]) -> None:
        self.settings = settings
        self.paths = RunPaths(settings.data_dir)
        self.children = {c.name: Child(c) for c in components}
        self.state = "starting"
        self.error = ""
        self.started_at = time.time()
        self._stop = asyncio.Event()
        self._stopping = False
        self._lock_fd: int | None = None

    # -- state ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "state": self.state,
            "error": self.error,
            "started_at": self.started_at,
            "components": {name: child.as_dict() for name, child in self.children.items()},
        }

    def save(self) -> None:
        tmp = self.paths.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(), indent=2))
        os.replace(tmp, self.paths.state)

    # -- lifecycle --------------------------------------------------------------------------
    def _acquire_lock(self) -> None:
        self.paths.run.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OperationFailed("lmsd is already running for this data dir") from None
        self._lock_fd = fd
        self.paths.pid.write_text(str(os.getpid()))

    def _release_lock(self) -> None:
        self.paths.pid.unlink(missing_ok=True)
        self.paths.control.unlink(missing_ok=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def run(self) -> int:
        self._acquire_lock()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        server = await self._serve_control()
        code = 0
        try:
            self.save()
            for group in self._start_groups():
                for child in group:
                    child.task = asyncio.create_task(self._supervise(child))
                for child in group:
                    await self._first_ready(child)
            self.state = "running"
            self.save()
            await self._stop.wait()
        except OperationFailed as exc:
            self.state, self.error, code = "failed", str(exc), 1
            self.save()
        finally:
            self.state = "stopping" if code == 0 else self.state
            self.save()
            server.close()
            await self.stop_all()
            if code == 0:
                self.state = "stopped"
            self.save()
            self._release_lock()
        return code

    def _start_groups(self) -> list[list[Child]]:
        """The children in start order, a run of ``together`` components as one group."""
        groups: list[list[Child]] = []
        for child in self.children.values():
            if child.component.together and groups and groups[-1][-1].component.together:
                groups[-1].append(child)
            else:
                groups.append([child])
        return groups

    async def _first_ready(self, child: Child) -> None:
        stop_wait: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        ready: asyncio.Future[Any] = child.ready
        done, _ = await asyncio.wait({ready, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if child.ready in done:
            child.ready.result()  # raises the start failure, if any
        else:
            raise OperationFailed("stopped while starting")

    async def stop_all(self) -> None:
        self._stopping = True
        for group in reversed(self._start_groups()):
            await asyncio.gather(*(self._stop_child(child) for child in group))
            for child in group:
                if child.task is not None:
                    child.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await child.task

    async def _stop_child(self, child: Child) -> None:
        proc = child.proc
        if proc is None or proc.returncode is not None:
            child.state = "stopped" if child.state != "failed" else child.state
            return
        child.state = "stopping"
        self.save()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(child.component.stop_signal)
        try:
            await asyncio.wait_for(proc.wait(), self.settings.runtime.stop_timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        child.state = "stopped"
        self.save()

    # -- one child --------------------------------------------------------------------------
    async def _supervise(self, child: Child) -> None:
        comp = child.component
        rt = self.settings.runtime
        failures = 0
        while not self._stopping and not child.paused:
            child.state = "starting"
            try:
                await self._prepare(child)
            except OperationFailed as exc:
                if not child.ready.done():  # the first start: fail `up` with the reason
                    child.state, child.last_exit = "failed", str(exc)
                    child.ready.set_exception(exc)
                    self.save()
                    return
                print(f"{comp.name}: {exc}", flush=True)
                child.last_exit = str(exc)
                child.state = "backoff"
                self.save()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), rt.restart_backoff_max_s)
                continue
            child.started_at = time.time()
            child.proc = await spawn(
                comp.argv,
                log_file=comp.log_file(self.settings),
                env=comp.env or None,
                user=comp.user,
            )
            self.save()
            try:
                await self._wait_ready(child)
            except OperationFailed as exc:
                if not child.ready.done():  # the first start: fail `up`, do not loop
                    child.state = "failed"
                    child.last_exit = str(exc)
                    child.ready.set_exception(exc)
                    if child.proc.returncode is None:
                        await self._stop_child(child)
                        child.state = "failed"
                    return
            else:
                child.state = "running"
                self.save()
                if not child.ready.done():
                    child.ready.set_result(None)
            code = await child.proc.wait()
            if self._stopping or child.paused:
                return
            uptime = time.time() - child.started_at
            child.restarts += 1
            child.last_exit = describe_exit(code)
            failures = 0 if uptime >= rt.stable_after_s else failures + 1
            delay = min(rt.restart_backoff_initial_s * 2 ** max(failures - 1, 0), rt.restart_backoff_max_s)
            child.state = "backoff"
            self.save()
            print(f"{comp.name} {child.last_exit}; restarting in {delay:.1f}s", flush=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _prepare(self, child: Child) -> None:
        """Run the component's prepare hook; a slow one (pg_basebackup) may be async."""
        if child.component.prepare is None:
            return
        result = child.component.prepare()
        if inspect.isawaitable(result):
            await result

    async def _wait_ready(self, child: Child) -> None:
        comp, proc = child.component, child.proc
        assert proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.runtime.start_timeout_s
        last = ""
        while loop.time() < deadline:
            if proc.returncode is not None:
                why = last_log_line(comp.log_file(self.settings))
                raise OperationFailed(
                    f"{comp.label} {describe_exit(proc.returncode)} while starting"
                    + (f": {why}" if why else "")
                )
            result = await (comp.ready or comp.probe)()
            if result.ok:
                if comp.after_ready is not None:
                    try:
                        await comp.after_ready()
                    except Exception as exc:  # noqa: BLE001 - reported, then retried
                        last = str(exc)
                        await asyncio.sleep(0.3)
                        continue
                return
            last = result.detail
            await asyncio.sleep(0.2)
        raise OperationFailed(f"{comp.label} did not become healthy in time: {last}")

    # -- control socket ---------------------------------------------------------------------
    async def _serve_control(self) -> asyncio.AbstractServer:
        self.paths.control.unlink(missing_ok=True)
        old = os.umask(0o077)
        try:
            return await asyncio.start_unix_server(self._handle, path=str(self.paths.control))
        finally:
            os.umask(old)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline())
            reply = await self._command(request.get("op", ""), request.get("component", ""))
        except (ValueError, LmsdError) as exc:
            reply = {"ok": False, "error": str(exc)}
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
        writer.close()

    async def _add(self, name: str) -> dict[str, Any]:
        """Start a component the settings gained since start-up (a Citus worker of `lmsd db
        add-worker`) in its place in the start order, the others untouched (cluster part, issue 15)."""
        if name in self.children:
            raise OperationFailed(f"{name!r} is already supervised")
        settings = load_settings(self.settings.data_dir)
        comps = components_mod.build(settings, credentials.load(settings.data_dir))
        order = [c.name for c in comps]
        if name not in order:
            raise OperationFailed(f"the settings have no component {name!r}")
        child = Child(comps[order.index(name)])
        self.children[name] = child
        rank = {n: i for i, n in enumerate(order)}
        self.children = {n: self.children[n] for n in sorted(self.children, key=lambda n: rank.get(n, len(rank)))}
        child.task = asyncio.create_task(self._supervise(child))
        try:
            await child.ready
        except LmsdError:
            del self.children[name]
            self.save()
            raise
        self.save()
        return {"ok": True}

    async def _command(self, op: str, name: str) -> dict[str, Any]:
        if op == "status":
            return {"ok": True, "state": self.snapshot()}
        if op == "shutdown":
            self._stop.set()
            return {"ok": True}
        if op == "add":
            return await self._add(name)
        child = self.children.get(name)
        if child is None:
            raise OperationFailed(f"unknown component {name!r}")
        if op == "pause":
            child.paused = True
            await self._stop_child(child)
            child.state = "paused"
            self.save()
            return {"ok": True}
        if op == "resume":
            if child.task is not None and not child.task.done():
                return {"ok": True}
            child.paused = False
            child.ready = asyncio.get_running_loop().create_future()
            child.task = asyncio.create_task(self._supervise(child))
            await child.ready
            return {"ok": True}
        raise OperationFailed(f"unknown operation {op!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmsd-supervisor")
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.data_dir)
        secrets = credentials.load(settings.data_dir)
        comps = components_mod.build(settings, secrets)
    except LmsdError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return asyncio.run(run(settings, comps))


async def run(settings: Settings, comps: list[Component]) -> int:
    try:
        return await Supervisor(settings, comps).run()
    except LmsdError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""Where an install keeps its run-time files inside the data dir (the supervisor's lock and state,
heartbeats of the event processes, logs, media): shared by the runtime, the event processes and
the CLI, so it lives in the core."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    data_dir: Path

    @property
    def run(self) -> Path:
        return self.data_dir / "run"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def lock(self) -> Path:
        return self.run / "supervisor.lock"

    @property
    def pid(self) -> Path:
        return self.run / "supervisor.pid"

    def heartbeat(self, service: str) -> Path:
        """Written every second by a running event service (relay, worker)."""
        return self.run / f"{service}.heartbeat"

    @property
    def state(self) -> Path:
        return self.run / "state.json"

    @property
    def control(self) -> Path:
        return self.run / "control.sock"

    @property
    def media(self) -> Path:
        return self.data_dir / "media"

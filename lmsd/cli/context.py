"""What every command gets: the data dir and lazily-built settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from lmsd.settings import Settings, default_data_dir, load_settings


@dataclass
class CliContext:
    data_dir_option: Path | None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return (self.data_dir_option or default_data_dir()).expanduser().resolve()

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.data_dir)
        return self._settings


def get(ctx: typer.Context) -> CliContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext)
    return obj

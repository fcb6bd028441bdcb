"""Loading: built-in defaults -> the admin's ``config.toml`` -> ``LMSD_*`` environment variables.

Later wins. ``__`` separates nesting (``LMSD_API__WORKERS=4``, ``LMSD_POSTGRES__HOST=db``); one
prefix for everything. Nothing is read at import time.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lmsd.errors import Invalid
from lmsd.settings.models import Settings, default_data_dir

CONFIG_FILE = "config.toml"
ENV_PREFIX = "LMSD_"


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
        raise Invalid(f"invalid configuration: {one_line(exc)}") from None


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


def one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)

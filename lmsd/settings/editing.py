"""Editing the admin's layer: ``lmsd config set`` and writing ``config.toml``.

A value is set only after the whole file, with it, is proven to load; the file is replaced
atomically, so a refused value leaves nothing half-written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from lmsd.errors import Invalid
from lmsd.settings.loading import config_path, load_settings, one_line, read_config_file
from lmsd.settings.models import Settings


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
        raise Invalid(f"invalid configuration: {one_line(exc)}") from None


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

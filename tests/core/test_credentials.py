"""Secrets: generated once, 0600 in their own folder, never shown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lmsd import credentials
from lmsd.errors import OperationFailed


def test_generated_once_private_and_masked(tmp_path: Path) -> None:
    first, created = credentials.ensure(tmp_path)
    again, created_again = credentials.ensure(tmp_path)
    assert created and not created_again
    assert first == again
    path = credentials.secrets_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.parent != tmp_path  # apart from config.toml
    for value in first.model_dump().values():
        assert value not in repr(first) and value not in str(first)
    assert set(first.masked().values()) == {credentials.MASK}
    other, _ = credentials.ensure(tmp_path / "other")
    assert other.postgres_password != first.postgres_password


def test_readable_by_others_is_refused(tmp_path: Path) -> None:
    credentials.ensure(tmp_path)
    os.chmod(credentials.secrets_path(tmp_path), 0o644)
    with pytest.raises(OperationFailed, match="chmod 600"):
        credentials.load(tmp_path)


def test_missing_secrets_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(OperationFailed, match="lmsd install"):
        credentials.load(tmp_path)

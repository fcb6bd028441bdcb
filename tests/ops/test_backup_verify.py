"""A backup is checked in full before a restore touches anything."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from lmsd.errors import Invalid
from lmsd.ops import backup


def _archive(path: Path, members: dict[str, bytes], manifest: dict | None = None) -> Path:
    files = {name: {"sha256": backup.hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in members.items()}
    manifest = manifest or {"format": backup.FORMAT, "format_version": backup.FORMAT_VERSION, "files": files}
    with tarfile.open(path, "w") as tar:
        for name, data in [(backup.MANIFEST, json.dumps(manifest).encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


GOOD = {"db/lmsd.dump": b"PGDMP...", "config/config.toml": b"[campus]\n", "config/secrets.toml": b"x = 1\n"}


def test_a_good_archive_passes(tmp_path: Path) -> None:
    manifest = backup.verify(_archive(tmp_path / "b.tar", GOOD))
    assert set(manifest["files"]) == set(GOOD)


def test_flipped_byte_is_caught(tmp_path: Path) -> None:
    path = _archive(tmp_path / "b.tar", GOOD)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PGDMP")
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(Invalid, match="checksum mismatch in db/lmsd.dump"):
        backup.verify(path)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not a tar at all" * 100), "corrupt or truncated|no lmsd manifest"),
        (lambda p: _foreign(p), "no lmsd manifest"),
        (lambda p: _archive(p, GOOD, {"format": "something-else", "files": {}}), "not an lmsd backup manifest"),
        (lambda p: _archive(p, GOOD, {"format": backup.FORMAT, "format_version": 99, "files": {}}), "format version 99"),
        (lambda p: _archive(p, {**GOOD, "../evil": b"x"}), "unsafe member"),
        (lambda p: _truncated(p), "truncated|missing"),
    ],
)
def test_bad_archives_are_refused(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "b.tar"
    make(path)
    with pytest.raises(Invalid, match=message):
        backup.verify(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="no such backup file"):
        backup.verify(tmp_path / "nope.tar")


def _foreign(path: Path) -> None:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("etc/hosts")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))


def _truncated(path: Path) -> None:
    _archive(path, {**GOOD, "media/big.bin": b"x" * 100_000})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

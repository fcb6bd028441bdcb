"""proto/check_compat.py: the real contracts pass; deliberately broken copies are caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROTO = Path(__file__).resolve().parents[2] / "proto"
CHECK = PROTO / "check_compat.py"
LOCK = PROTO / "released.lock.json"
V1 = "lmsd/contracts/v1"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), *map(str, args)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the contracts to break (include root: tmp/proto)."""
    shutil.copytree(PROTO / "lmsd", tmp_path / "proto" / "lmsd")
    return tmp_path / "proto"


def edit(root: Path, file: str, old: str, new: str) -> None:
    path = root / V1 / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_real_contracts_are_compatible() -> None:
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok:")


E = "lmsd.contracts.v1"
# name -> (edits as (file, old text, new text), the exact lines the check must print)
BREAKS: dict[str, tuple[list[tuple[str, str, str]], list[str]]] = {
    "type": (
        [("envelope.proto", "uint64 version = 5;", "int64 version = 5;")],
        [f"{E}.Event.version (5): type changed from uint64 to int64"],
    ),
    "message_type": (
        [("learning.proto", "repeated Segment segments = 4;", "repeated string segments = 4;")],
        [f"{E}.VideoWatched.segments (4): type changed from {E}.Segment to string"],
    ),
    "label": (
        [("catalog.proto", "string code = 1;", "repeated string code = 1;")],
        [f"{E}.CoursePublished.code (1): label changed from singular to repeated"],
    ),
    "into_oneof": (
        [
            ("envelope.proto", "string actor_id = 8;", ""),
            ("envelope.proto", "oneof body {", "oneof body {\n    string actor_id = 8;"),
        ],
        [f"{E}.Event.actor_id (8): label changed from singular to oneof body"],
    ),
    "renumbered": (
        [("learning.proto", "uint32 end_ms = 2;", "uint32 end_ms = 3;")],
        [f"{E}.Segment.end_ms (2): number changed from 2 to 3"],
    ),
    "removed_unreserved": (
        [("envelope.proto", "string actor_id = 8;", "")],
        [f"{E}.Event.actor_id (8): removed without reserving its number (add `reserved 8;`)"],
    ),
    "number_reused": (
        [("media.proto", "uint32 bandwidth = 4;", "uint64 bits_per_second = 4;")],
        [f"{E}.Rendition.bandwidth (4): number 4 reused by bits_per_second (never reuse a number)"],
    ),
    "message_removed": (
        [
            ("learning.proto", "message CourseCompleted {", "message CourseFinished {"),
            ("envelope.proto", "CourseCompleted course_completed", "CourseFinished course_completed"),
        ],
        [
            f"{E}.Event.course_completed (25): type changed from {E}.CourseCompleted to {E}.CourseFinished",
            f"{E}.CourseCompleted: released message removed or renamed",
        ],
    ),
}


@pytest.mark.parametrize("name", BREAKS)
def test_breaking_change_is_caught(root: Path, name: str) -> None:
    edits, expected = BREAKS[name]
    for file, old, new in edits:
        edit(root, file, old, new)
    result = run("--root", root, "--lock", LOCK)
    assert result.returncode == 1, result.stdout + result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(expected)
    assert f"{len(expected)} incompatible change(s)" in result.stderr


def test_removed_and_reserved_is_fine(root: Path) -> None:
    edit(root, "envelope.proto", "string actor_id = 8;", "reserved 8;")
    result = run("--root", root, "--lock", LOCK)
    assert result.returncode == 0, result.stdout + result.stderr


def test_additions_are_fine(root: Path) -> None:
    edit(root, "envelope.proto", "string actor_id = 8;", "string actor_id = 8;\n  string trace_id = 9;")
    edit(
        root,
        "media.proto",
        "message Rendition {",
        "message Subtitles { string language = 1; }\n\nmessage Rendition {",
    )
    result = run("--root", root, "--lock", LOCK)
    assert result.returncode == 0, result.stdout + result.stderr


def test_update_then_dropping_a_reservation_is_caught(root: Path, tmp_path: Path) -> None:
    lock = tmp_path / "lock.json"
    shutil.copy(LOCK, lock)
    edit(root, "envelope.proto", "string actor_id = 8;", "reserved 8;")
    assert run("--root", root, "--lock", lock, "--update").returncode == 0
    assert '"reserved": [[8, 8]]' in lock.read_text(encoding="utf-8")
    edit(root, "envelope.proto", "reserved 8;", "")
    result = run("--root", root, "--lock", lock)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["lmsd.contracts.v1.Event: reserved number(s) 8 no longer reserved"]


def test_update_refuses_an_incompatible_change(root: Path, tmp_path: Path) -> None:
    lock = tmp_path / "lock.json"
    shutil.copy(LOCK, lock)
    edit(root, "envelope.proto", "uint64 version = 5;", "int64 version = 5;")
    result = run("--root", root, "--lock", lock, "--update")
    assert result.returncode == 1
    assert lock.read_text(encoding="utf-8") == LOCK.read_text(encoding="utf-8")
    assert "lock not updated" in result.stderr

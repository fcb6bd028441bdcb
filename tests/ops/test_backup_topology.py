"""The topology in a backup's manifest (docs/citus.md, "Backup, restore, upgrade and replicas on
Citus"): a Citus archive must hold every node's base backup, and an archive is refused before a
restore changes anything when the settings would restore it into another topology. No server
needed; the restore of a real cluster is tests/citus/test_backup_upgrade.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lmsd.errors import Invalid
from lmsd.ops import backup, backup_citus
from lmsd.settings import load_settings
from tests.ops.test_backup_verify import GOOD, _archive

NODES = ["postgres", "postgres-worker-1", "postgres-worker-2"]
CITUS = {
    **{f"db/citus/{node}/base.tar.gz": b"\x1f\x8b base" for node in NODES},
    "config/config.toml": b"[campus]\n",
    "config/secrets.toml": b"x = 1\n",
}


def _manifest(members: dict[str, bytes], topology: dict[str, Any]) -> dict[str, Any]:
    files = {name: {"sha256": backup.hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in members.items()}
    return {"format": backup.FORMAT, "format_version": backup.FORMAT_VERSION, "files": files, "topology": topology}


TOPOLOGY = {"citus_workers": 2, "nodes": NODES, "restore_point": "lmsd-20261207T000000Z"}


def test_a_citus_archive_with_every_node_passes(tmp_path: Path) -> None:
    manifest = backup.verify(_archive(tmp_path / "b.tar", CITUS, _manifest(CITUS, TOPOLOGY)))
    assert backup_citus.archive_workers(manifest) == 2


def test_an_archive_without_topology_is_plain(tmp_path: Path) -> None:
    manifest = backup.verify(_archive(tmp_path / "b.tar", GOOD))
    assert backup_citus.archive_workers(manifest) == 0


@pytest.mark.parametrize(
    ("members", "topology", "message"),
    [
        (CITUS, {**TOPOLOGY, "nodes": ["postgres"]}, r"its topology is damaged: 2 Citus workers, nodes \['postgres'\]"),
        (CITUS, {**TOPOLOGY, "restore_point": ""}, "its topology is damaged"),
        (CITUS, {**TOPOLOGY, "citus_workers": "two"}, "its topology is damaged"),
        (
            {k: v for k, v in CITUS.items() if "worker-2" not in k},
            TOPOLOGY,
            "it lacks db/citus/postgres-worker-2/base.tar.gz",
        ),
        (GOOD, TOPOLOGY, "it lacks db/citus/postgres/base.tar.gz"),  # a plain dump called a cluster
    ],
)
def test_a_citus_archive_missing_a_node_is_refused(
    tmp_path: Path, members: dict[str, bytes], topology: dict[str, Any], message: str
) -> None:
    path = _archive(tmp_path / "b.tar", members, _manifest(members, topology))
    with pytest.raises(Invalid, match=message):
        backup.verify(path)


def test_restore_refuses_another_topology_before_anything_changes(tmp_path: Path) -> None:
    archive = tmp_path / "b.tar"
    citus = {"topology": TOPOLOGY}
    plain: dict[str, Any] = {"topology": {"citus_workers": 0}}
    on_plain = load_settings(tmp_path / "plain")
    with pytest.raises(Invalid, match="holds a Citus cluster with 2 workers but the settings here would restore it into plain PostgreSQL"):
        backup_citus.check_topology(archive, citus, on_plain)
    one = load_settings(tmp_path / "one", postgres={"citus_workers": 1})
    with pytest.raises(Invalid, match="into 1 Citus workers"):
        backup_citus.check_topology(archive, citus, one)
    with pytest.raises(Invalid, match=r"holds a campus on plain PostgreSQL .* then `lmsd db distribute`"):
        backup_citus.check_topology(archive, plain, one)
    outside = load_settings(tmp_path / "outside", postgres={"citus_worker_nodes": ["w1.internal:5432"]})
    with pytest.raises(Invalid, match="citus_worker_nodes names Citus workers lmsd does not run"):
        backup_citus.check_topology(archive, citus, outside)
    backup_citus.check_topology(archive, plain, on_plain)  # plain into plain: nothing to say

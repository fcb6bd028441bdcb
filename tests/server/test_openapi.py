"""The committed OpenAPI document is the one the app serves (regenerate: `lmsd dev openapi`)."""

from __future__ import annotations

import json
from pathlib import Path

from lmsd.ops.openapi import document
from lmsd.settings import Settings

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_document_is_current(tmp_path: Path) -> None:
    current = json.loads(json.dumps(document(Settings(data_dir=tmp_path)), sort_keys=True))
    assert json.loads(COMMITTED.read_text()) == current, "docs/openapi.json is stale: run `lmsd dev openapi`"
    assert current["openapi"].startswith("3.1")
    for path in ("/api/v1/courses", "/api/v1/quizzes/{quiz_id}/attempts", "/api/v1/auth/refresh"):
        assert path in current["paths"]

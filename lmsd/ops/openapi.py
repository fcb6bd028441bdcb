"""The API's OpenAPI 3.1 document, generated from the app (committed as docs/openapi.json)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from lmsd import credentials
from lmsd.app import create_app
from lmsd.settings import Settings


def document(settings: Settings) -> dict[str, object]:
    """Built from the route handlers alone: no database is contacted."""
    # Any valid key will do: the document does not depend on secrets or campus values.
    fake = credentials.generate()
    neutral = settings.model_copy(
        update={"campus": settings.campus.model_copy(update={"id": str(uuid.UUID(int=0)), "name": "lmsd"})}
    )
    app = create_app(neutral, fake)
    schema: dict[str, object] = app.openapi_schema.to_schema()
    return schema


def write(settings: Settings, out: Path) -> None:
    out.write_text(json.dumps(document(settings), indent=2, sort_keys=True) + "\n")

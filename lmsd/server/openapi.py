"""Make the OpenAPI document say what the API does on errors: RFC 9457 problem+json.

Litestar documents its validation errors as application/json with its own shape; every error
of this API is problem+json (lmsd.server.errors), so the document is corrected once, after
generation, for every operation.
"""

from __future__ import annotations

from http import HTTPStatus

from litestar import Litestar
from litestar.openapi.spec import Components, OpenAPIMediaType, OpenAPIResponse, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

PROBLEM = "application/problem+json"
COMMON = (400, 401, 403, 404, 409, 413, 422, 429)
CONDITIONAL = (412, 428)  # updates with If-Match


def _problem_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "title", "status", "detail"],
        properties={
            "type": Schema(type=OpenAPIType.STRING),
            "title": Schema(type=OpenAPIType.STRING),
            "status": Schema(type=OpenAPIType.INTEGER),
            "detail": Schema(type=OpenAPIType.STRING),
            "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
        },
        description="RFC 9457 problem details",
    )


def document_problems(app: Litestar) -> None:
    doc = app.openapi_schema
    doc.components = doc.components or Components()
    doc.components.schemas = {**(doc.components.schemas or {}), "Problem": _problem_schema()}
    problem = {PROBLEM: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))}
    for path_item in (doc.paths or {}).values():
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(path_item, method, None)
            if operation is None:
                continue
            responses = operation.responses = dict(operation.responses or {})
            codes = COMMON + (CONDITIONAL if method in ("patch", "put") else ())
            for code in codes:
                responses[str(code)] = OpenAPIResponse(description=HTTPStatus(code).phrase, content=problem)
            responses["500"] = OpenAPIResponse(description="Internal Server Error", content=problem)

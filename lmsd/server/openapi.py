"""Finish the OpenAPI document so that it says exactly what the API does.

Constraints live where the server enforces them (msgspec.Meta on the wire shapes, Litestar's
Parameter on query, path and header parameters), so the document and the validation come from
one declaration. What Litestar cannot say from those declarations is added here, once, after
generation, for every operation:

- errors are RFC 9457 problem+json (Litestar documents its own shape) with ``code`` and ``field``;
- an operation whose handler does not ask for the caller's identity is public (``security: []``);
- a conditional update requires ``If-Match`` (the service answers 428 without it, which Litestar
  cannot express as a required parameter without answering 400 itself) and may answer 412;
- the gateway refuses a request head larger than it accepts with 431 (no body), on any path;
- tus operations require ``Tus-Resumable`` (412 otherwise, as tus says, not 400);
- a handler that reads its body itself names the body's media types and size in
  ``opt={"raw_body": ({media type, ...}, max bytes)}``, the headers it requires and reads itself
  in ``opt={"headers": {name: pattern}}``;
- the constraints msgspec enforces that Litestar's generator leaves out (openapi_shapes);
- the links between operations (create a course, then read or change it with the ETag it gave),
  which clients and schemathesis's stateful phase follow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    Link,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.routes import HTTPRoute

from lmsd.server.openapi_shapes import add_struct_constraints

PROBLEM = "application/problem+json"
METHODS = ("get", "put", "post", "patch", "delete", "head")
COMMON = (400, 401, 403, 404, 409, 413, 422, 429)
CONDITIONAL = (412, 428)  # updates with If-Match
PRECONDITION_HEADERS = {"If-Match": CONDITIONAL}
TUS = "/api/v1/uploads"  # tus answers 412 to a request without its Tus-Resumable version
TUS_VERSION = "1.0.0"
HEAD_TOO_LARGE = 431  # the gateway's answer to a request line and headers beyond its limit
WITH_BODY = ("post", "put", "patch")

# (operation, status) -> {link name: (target operation, {parameter: runtime expression})}
BODY_ID = "$response.body#/id"
ETAG = "$response.header.ETag"
COURSE = "/api/v1/courses/{course_id}"
_COURSE_LINKS = {
    "GetCourse": ("GET " + COURSE, {"course_id": BODY_ID}),
    "UpdateCourse": ("PATCH " + COURSE, {"course_id": BODY_ID, "header.If-Match": ETAG}),
    "AddModule": ("POST " + COURSE + "/modules", {"course_id": BODY_ID}),
    "AddQuiz": ("POST " + COURSE + "/quizzes", {"course_id": BODY_ID}),
    "Enrol": ("POST " + COURSE + "/enrolments", {"course_id": BODY_ID}),
    "EnrolSelf": ("POST " + COURSE + "/enrol", {"course_id": BODY_ID}),
    "ListEnrolments": ("GET " + COURSE + "/enrolments", {"course_id": BODY_ID}),
    "Export": ("GET " + COURSE + "/export", {"course_id": BODY_ID}),
    "Gradebook": ("GET " + COURSE + "/gradebook", {"course_id": BODY_ID}),
    "MyGrades": ("GET " + COURSE + "/grades/me", {"course_id": BODY_ID}),
    "Videos": ("GET " + COURSE + "/videos", {"course_id": BODY_ID}),
}
_ENROLMENT_LINKS = {
    "SetStatus": ("PATCH /api/v1/enrolments/{enrolment_id}", {"enrolment_id": BODY_ID}),
    "Progress": ("GET /api/v1/enrolments/{enrolment_id}/progress", {"enrolment_id": BODY_ID}),
}
LINKS: dict[tuple[str, int], dict[str, tuple[str, dict[str, str]]]] = {
    ("POST /api/v1/courses", 201): _COURSE_LINKS,
    ("POST /api/v1/courses/import", 201): _COURSE_LINKS,
    ("GET /api/v1/courses", 200): {
        "GetFirstCourse": ("GET " + COURSE, {"course_id": "$response.body#/items/0/id"}),
        "EnrolSelfInFirst": ("POST " + COURSE + "/enrol", {"course_id": "$response.body#/items/0/id"}),
    },
    ("GET " + COURSE, 200): {
        "UpdateCourse": ("PATCH " + COURSE, {"course_id": "$response.body#/course/id", "header.If-Match": ETAG}),
    },
    ("POST " + COURSE + "/modules", 201): {
        "RenameModule": ("PATCH /api/v1/modules/{module_id}", {"module_id": BODY_ID, "header.If-Match": ETAG}),
        "DeleteModule": ("DELETE /api/v1/modules/{module_id}", {"module_id": BODY_ID}),
        "AddLesson": ("POST /api/v1/modules/{module_id}/lessons", {"module_id": BODY_ID}),
    },
    ("POST /api/v1/modules/{module_id}/lessons", 201): {
        "GetLesson": ("GET /api/v1/lessons/{lesson_id}", {"lesson_id": BODY_ID}),
        "UpdateLesson": ("PATCH /api/v1/lessons/{lesson_id}", {"lesson_id": BODY_ID, "header.If-Match": ETAG}),
    },
    ("POST " + COURSE + "/quizzes", 201): {
        "GetQuiz": ("GET /api/v1/quizzes/{quiz_id}", {"quiz_id": BODY_ID}),
        "Attempt": ("POST /api/v1/quizzes/{quiz_id}/attempts", {"quiz_id": BODY_ID}),
    },
    ("POST " + COURSE + "/enrolments", 201): _ENROLMENT_LINKS,
    ("POST " + COURSE + "/enrol", 201): _ENROLMENT_LINKS,
    ("POST /api/v1/users", 201): {
        "GetUser": ("GET /api/v1/users/{user_id}", {"user_id": BODY_ID}),
        "ResetPassword": ("POST /api/v1/users/{user_id}/password-reset", {"user_id": BODY_ID}),
    },
    ("GET /api/v1/me", 200): {"GetMyAccount": ("GET /api/v1/users/{user_id}", {"user_id": BODY_ID})},
}


def _problem_schema() -> Schema:
    text = Schema(type=OpenAPIType.STRING)
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "title", "status", "detail"],
        properties={
            "type": text,
            "title": text,
            "status": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599),
            "detail": text,
            "code": Schema(type=OpenAPIType.STRING, description="stable machine code, e.g. course.code_taken"),
            "field": Schema(type=OpenAPIType.STRING, description="the input field the problem is about"),
            "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
        },
        description="RFC 9457 problem details",
    )


def _operations(app: Litestar) -> dict[str, Operation]:
    """"METHOD /path" -> the document's operation."""
    found = {}
    for path, item in (app.openapi_schema.paths or {}).items():
        for method in METHODS:
            if (operation := getattr(item, method, None)) is not None:
                found[f"{method.upper()} {path}"] = operation
    return found


def _public(app: Litestar) -> set[str]:
    """Operations whose handler does not ask who is calling."""
    public: set[str] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if "identity" not in handler.parsed_fn_signature.parameters:
                public.update(f"{method} {route.path_format}" for method in handler.http_methods)
    return public


def _opts(app: Litestar, name: str) -> dict[str, Any]:
    """"METHOD /path" -> the handler's ``opt[name]``, for handlers that read a part of the request
    themselves (``raw_body``: (media types, max bytes); ``headers``: {required header: pattern})."""
    found = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if (value := handler.opt.get(name)) is not None:
                found.update({f"{method} {route.path_format}": value for method in handler.http_methods})
    return found


def _parameters(operation: Operation) -> dict[str, Any]:
    return {p.name: p for p in operation.parameters or [] if not isinstance(p, Reference)}


def document_problems(app: Litestar) -> None:
    doc = app.openapi_schema
    doc.components = doc.components or Components()
    doc.components.schemas = {**(doc.components.schemas or {}), "Problem": _problem_schema()}
    problem = {PROBLEM: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))}
    doc.components.responses = {
        **(doc.components.responses or {}),
        # Any path answers a method it does not have with 405 and the methods it has.
        "MethodNotAllowed": OpenAPIResponse(
            description="Method Not Allowed",
            content=problem,
            headers={"Allow": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), required=True)},
        ),
    }
    operations = _operations(app)
    public = _public(app)
    raw_bodies, read_headers = _opts(app, "raw_body"), _opts(app, "headers")
    for key, operation in operations.items():
        method = key.split(" ", 1)[0].lower()
        responses = operation.responses = dict(operation.responses or {})
        codes = set(COMMON) | ({415} if method in WITH_BODY else set())
        if key.split(" ", 1)[1].startswith(TUS):
            codes.add(412)
            operation.parameters = [*(operation.parameters or []), _header("Tus-Resumable", enum=[TUS_VERSION])]
        for name, pattern in read_headers.get(key, {}).items():
            operation.parameters = [*(operation.parameters or []), _header(name, pattern=pattern)]
        for name, parameter in _parameters(operation).items():
            codes |= set(PRECONDITION_HEADERS.get(name, ()))
            if name == "If-Match":
                parameter.required = True
            parameter.schema = _not_null(parameter.schema, keep_null=parameter.param_in == "query")
        if key in raw_bodies:
            operation.request_body = _raw_body(*raw_bodies[key])
        for code in sorted(codes):
            responses[str(code)] = OpenAPIResponse(description=HTTPStatus(code).phrase, content=problem)
        responses[str(HEAD_TOO_LARGE)] = OpenAPIResponse(description="Request Header Fields Too Large (the gateway)")
        responses["500"] = OpenAPIResponse(description="Internal Server Error", content=problem)
        if key in public:
            operation.security = []
    _link(operations)
    _closed_objects(doc.components.schemas)
    for component in doc.components.schemas.values():
        for schema in _nested(component):
            if schema.one_of:
                _constraints_inward(schema)
    named = Counter(struct.__name__ for struct in _structs())
    for struct, schema in _struct_components(doc.components.schemas):
        if named[struct.__name__] == 1:  # two shapes of one name: which component is whose is unknown
            add_struct_constraints(schema, struct)
    _options_name_every_method(app)


def _header(name: str, *, pattern: str | None = None, enum: list[Any] | None = None) -> Parameter:
    """A required header the handler reads itself (tus: the version, lengths and offsets)."""
    return Parameter(
        name=name, param_in="header", required=True, schema=Schema(type=OpenAPIType.STRING, pattern=pattern, enum=enum)
    )


def _raw_body(media_types: tuple[str, ...], max_bytes: int) -> RequestBody:
    def schema(media: str) -> Schema:
        if media.startswith("text/"):
            return Schema(type=OpenAPIType.STRING, max_length=max_bytes)
        return Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)

    return RequestBody(required=True, content={media: OpenAPIMediaType(schema=schema(media)) for media in media_types})


def _not_null(schema: Any, *, keep_null: bool = False) -> Any:
    """A path or header parameter is a string: `X | None` in Python means "may be left out", not
    the text "null", which Litestar's `oneOf: [X, null]` would invite. A query parameter of type
    `X | None` does take the text "null" for "left out" (Litestar reads it so): it stays."""
    if isinstance(schema, Schema) and schema.one_of:
        _constraints_inward(schema)
        if keep_null:
            return schema
        rest = [s for s in schema.one_of if not (isinstance(s, Schema) and s.type == OpenAPIType.NULL)]
        if len(rest) == 1:
            return rest[0]
        schema.one_of = rest
    return schema


CONSTRAINTS = ("pattern", "min_length", "max_length", "minimum", "maximum", "exclusive_minimum",
               "exclusive_maximum", "multiple_of", "min_items", "max_items", "format")


def _constraints_inward(schema: Schema) -> None:
    """Litestar puts the constraints of ``Annotated[X | None, ...]`` beside ``oneOf: [X, null]``,
    where they also judge ``null`` and tools ignore them; they belong to ``X``."""
    for alternative in schema.one_of or ():
        if not isinstance(alternative, Schema) or alternative.type == OpenAPIType.NULL:
            continue
        for name in CONSTRAINTS:
            if getattr(schema, name, None) is not None and getattr(alternative, name, None) is None:
                setattr(alternative, name, getattr(schema, name))
    for name in CONSTRAINTS:
        setattr(schema, name, None)


def _nested(schema: Any) -> Iterator[Schema]:
    if isinstance(schema, Schema):
        yield schema
        for child in (*(schema.one_of or ()), *(schema.any_of or ()), *(schema.properties or {}).values()):
            yield from _nested(child)
        if isinstance(schema.items, Schema):
            yield from _nested(schema.items)


def _structs(cls: type[msgspec.Struct] = msgspec.Struct) -> Iterator[type[msgspec.Struct]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _structs(sub)


def _struct_components(schemas: dict[str, Any]) -> Iterator[tuple[type[msgspec.Struct], Schema]]:
    """Each wire shape with the document's component made of it."""
    for struct in _structs():
        for name, schema in schemas.items():
            if (name == struct.__name__ or name.endswith("_" + struct.__name__)) and isinstance(schema, Schema):
                yield struct, schema


def _closed_objects(schemas: dict[str, Any]) -> None:
    """Wire shapes that refuse unknown fields (msgspec ``forbid_unknown_fields``) say so."""
    for struct, schema in _struct_components(schemas):
        if struct.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False


def _options_name_every_method(app: Litestar) -> None:
    """Litestar's automatic OPTIONS answer names the methods of the route it was made for; when
    handlers of one path are registered in turns, the route is rebuilt and the answer keeps the
    first route's methods. Point every such answer at its final route (`Allow` = the document)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            fn = getattr(handler.fn, "__closure__", None) and handler.fn
            if handler.http_methods != {"OPTIONS"} or fn is None or fn.__name__ != "options_handler":
                continue
            for cell in fn.__closure__ or ():
                if isinstance(cell.cell_contents, HTTPRoute):
                    cell.cell_contents.methods = route.methods


def _link(operations: dict[str, Operation]) -> None:
    for (source, status), links in LINKS.items():
        response = (operations[source].responses or {})[str(status)]
        assert isinstance(response, OpenAPIResponse)
        response.links = {
            name: Link(operation_id=operations[target].operation_id, parameters=dict(parameters))
            for name, (target, parameters) in links.items()
        }

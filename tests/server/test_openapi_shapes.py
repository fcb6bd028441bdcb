"""The document says every constraint the server enforces (schemathesis's findings, kept fixed).

Each case here was once a request the document allowed and the server refused (or the other way
round); the whole-API check is tests/server/test_schemathesis.py, through the gateway.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

import msgspec
import pytest
from litestar.openapi.spec import Schema

from lmsd.identity.service import EMAIL_PATTERN
from lmsd.ops.openapi import document
from lmsd.server.openapi_shapes import UUID_PATTERN, add_struct_constraints
from lmsd.settings import Settings


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return document(Settings(data_dir=tmp_path_factory.mktemp("data")))


def _schemas(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc["components"]["schemas"]
    return schemas


def test_a_zero_bound_is_a_bound(doc: dict[str, Any]) -> None:
    position = _schemas(doc)["ModuleIn"]["properties"]["position"]["oneOf"][0]
    assert position["minimum"] == 0 and position["maximum"] == 10_000


def test_list_items_keep_their_constraints(doc: dict[str, Any]) -> None:
    schemas = _schemas(doc)
    assert schemas["CourseIn"]["properties"]["tags"]["items"]["minLength"] == 1
    assert schemas["CoursePatch"]["properties"]["tags"]["oneOf"][0]["items"]["minLength"] == 1
    assert schemas["QuestionIn"]["properties"]["options"]["items"]["minLength"] == 1


def test_dict_keys_are_described(doc: dict[str, Any]) -> None:
    names = _schemas(doc)["ActivityBatch"]["properties"]["expected_versions"]["propertyNames"]
    assert names["format"] == "uuid"
    assert re.match(names["pattern"], str(uuid.uuid4())) and not re.match(names["pattern"], "x-extra")


def test_a_body_read_by_hand_is_documented(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/api/v1/videos/{video_id}/transcript"]["put"]["requestBody"]
    assert body["required"] is True and set(body["content"]) == {"text/vtt", "text/plain"}


def test_tus_operations_require_their_version_and_may_answer_412(doc: dict[str, Any]) -> None:
    for method in ("head", "patch", "delete"):
        operation = doc["paths"]["/api/v1/uploads/{upload_id}"][method]
        header = next(p for p in operation["parameters"] if p["name"] == "Tus-Resumable")
        assert header["required"] is True and header["schema"]["enum"] == ["1.0.0"]
        assert "412" in operation["responses"]


def test_every_operation_may_meet_the_gateways_431(doc: dict[str, Any]) -> None:
    for item in doc["paths"].values():
        for method in ("get", "put", "post", "patch", "delete"):
            if method in item:
                assert "431" in item[method]["responses"]


def test_optional_query_parameters_take_null_as_the_server_does(doc: dict[str, Any]) -> None:
    limit = next(p for p in doc["paths"]["/api/v1/courses"]["get"]["parameters"] if p["name"] == "limit")
    kinds = [alternative.get("type") for alternative in limit["schema"]["oneOf"]]
    assert kinds == ["integer", "null"] and limit["schema"]["oneOf"][0]["minimum"] == 1


def test_walk_completes_a_shape_it_is_given() -> None:
    class Shape(msgspec.Struct):
        count: Annotated[int, msgspec.Meta(ge=0)]
        names: list[Annotated[str, msgspec.Meta(min_length=1)]]
        seen: dict[uuid.UUID, int]

    schema = Schema(properties={"count": Schema(), "names": Schema(items=Schema()), "seen": Schema()})
    add_struct_constraints(schema, Shape)
    assert schema.properties is not None
    count, names, seen = (schema.properties[n] for n in ("count", "names", "seen"))
    assert isinstance(count, Schema) and count.minimum == 0
    assert isinstance(names, Schema) and isinstance(names.items, Schema) and names.items.min_length == 1
    assert isinstance(seen, Schema) and isinstance(seen.property_names, Schema)
    assert seen.property_names.pattern == UUID_PATTERN


@pytest.mark.parametrize("space", ["\x1c", "\x1f", "\x85", "\ufeff", "\u00a0", " ", "\t"])
def test_email_pattern_refuses_white_space_of_either_regex_dialect(space: str) -> None:
    assert re.match(EMAIL_PATTERN, "ada@example.org")
    assert not re.match(EMAIL_PATTERN, f"a{space}da@example.org")
    assert not re.match(EMAIL_PATTERN, f"ada@exa{space}mple.org")


"""The Python contract code against the shared vectors (proto/testdata/vectors.json).

rust/proto/tests/vectors.rs checks the Rust code against the same bytes, so both languages
agree on the wire format of every case.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from lmsd.contracts.v1 import envelope_pb2

TESTDATA = Path(__file__).resolve().parents[2] / "proto" / "testdata"
VECTORS = json.loads((TESTDATA / "vectors.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = VECTORS["cases"]


def _case_ids() -> list[str]:
    return [case["name"] for case in CASES]


def test_file_header() -> None:
    assert VECTORS["message"] == envelope_pb2.Event.DESCRIPTOR.full_name
    assert len(set(_case_ids())) == len(CASES), "duplicate case names"


@pytest.mark.parametrize("case", CASES, ids=_case_ids())
def test_encode(case: dict[str, Any]) -> None:
    msg = json_format.ParseDict(case["json"], envelope_pb2.Event())
    assert msg.SerializeToString(deterministic=True).hex() == case["hex"]


@pytest.mark.parametrize("case", CASES, ids=_case_ids())
def test_decode(case: dict[str, Any]) -> None:
    decoded = envelope_pb2.Event.FromString(bytes.fromhex(case["hex"]))
    assert decoded == json_format.ParseDict(case["json"], envelope_pb2.Event())
    assert json_format.MessageToDict(decoded, preserving_proto_field_name=True) == case["json"]


def test_every_body_variant_is_covered() -> None:
    variants = {f.name for f in envelope_pb2.Event.DESCRIPTOR.oneofs_by_name["body"].fields}
    covered = {key for case in CASES for key in case["json"]} & variants
    assert covered == variants, f"no vector for: {sorted(variants - covered)}"


def test_file_matches_generator() -> None:
    spec = importlib.util.spec_from_file_location("make_vectors", TESTDATA / "make_vectors.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (TESTDATA / "vectors.json").read_text(encoding="utf-8")
    assert module.render() == committed, "vectors.json is stale: run proto/testdata/make_vectors.py"

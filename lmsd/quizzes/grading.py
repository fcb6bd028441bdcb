"""Automatic grading: pure functions, so they are easy to test exhaustively."""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from lmsd.errors import Invalid


def validate_question(kind: str, options: list[str], answer: Any) -> Any:
    """Check a question is gradable and return its answer in stored (JSON) form."""
    if kind in ("single", "multiple") and len(options) < 2:
        raise Invalid(f"a {kind}-choice question needs at least two options", field="options", code="question.options_too_few")
    if kind == "single":
        if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(options):
            raise Invalid("a single-choice answer is the index of one option", field="answer", code="question.answer_invalid")
        return answer
    if kind == "multiple":
        if not isinstance(answer, list) or not answer or not all(type(i) is int for i in answer):
            raise Invalid("a multiple-choice answer is a list of option indexes", field="answer", code="question.answer_invalid")
        if any(not 0 <= i < len(options) for i in answer) or len(set(answer)) != len(answer):
            raise Invalid("multiple-choice answer indexes must be distinct options", field="answer", code="question.answer_invalid")
        return sorted(answer)
    if kind == "numeric":
        value, tolerance = getattr(answer, "value", None), getattr(answer, "tolerance", 0.0)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not math.isfinite(tolerance):
            raise Invalid("a numeric answer is {value, tolerance}", field="answer", code="question.answer_invalid")
        return {"value": value, "tolerance": tolerance}
    if kind == "short_text":
        if not isinstance(answer, list) or not answer or not all(isinstance(a, str) and a.strip() for a in answer):
            raise Invalid("a short-text answer is a list of accepted answers", field="answer", code="question.answer_invalid")
        if options:
            raise Invalid("short-text questions have no options", field="options", code="question.options_unexpected")
        return [normalise(a) for a in answer]
    raise Invalid(f"unknown question kind {kind!r}", field="kind", code="question.kind_unknown")


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def is_correct(kind: str, expected: Any, given: Any) -> bool:
    """Whether ``given`` (what the learner sent) is right. Wrong types are simply wrong."""
    if given is None:
        return False
    if kind == "single":
        return isinstance(given, int) and not isinstance(given, bool) and given == expected
    if kind == "multiple":
        return isinstance(given, list) and all(isinstance(i, int) for i in given) and sorted(set(given)) == expected
    if kind == "numeric":
        if isinstance(given, bool) or not isinstance(given, (int, float)) or not math.isfinite(given):
            return False
        return abs(float(given) - float(expected["value"])) <= float(expected["tolerance"]) + 1e-9
    if kind == "short_text":
        return isinstance(given, str) and normalise(given) in expected
    return False

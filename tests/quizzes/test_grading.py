"""Automatic grading (lmsd/quizzes/grading.py): pure functions, tested exhaustively by kind."""

from __future__ import annotations

import math
from typing import Any

import pytest

from lmsd.errors import Invalid
from lmsd.quizzes import grading
from lmsd.quizzes.schemas import NumericAnswer


@pytest.mark.parametrize(
    ("kind", "options", "answer", "stored"),
    [
        ("single", ["a", "b"], 1, 1),
        ("multiple", ["a", "b", "c"], [2, 0], [0, 2]),
        ("numeric", [], NumericAnswer(value=2.5, tolerance=0.1), {"value": 2.5, "tolerance": 0.1}),
        ("short_text", [], ["  Ça   Va ", "ok"], ["ça va", "ok"]),
    ],
)
def test_valid_questions_are_stored_in_normal_form(kind: str, options: list[str], answer: Any, stored: Any) -> None:
    assert grading.validate_question(kind, options, answer) == stored


@pytest.mark.parametrize(
    ("kind", "options", "answer"),
    [
        ("single", ["a"], 0),  # fewer than two options
        ("multiple", [], [0]),
        ("single", ["a", "b"], 2),  # out of range
        ("single", ["a", "b"], -1),
        ("single", ["a", "b"], True),  # a bool is not an index
        ("single", ["a", "b"], "0"),
        ("multiple", ["a", "b"], []),
        ("multiple", ["a", "b"], [0, 0]),
        ("multiple", ["a", "b"], [0, 5]),
        ("multiple", ["a", "b"], [True]),
        ("multiple", ["a", "b"], 1),
        ("numeric", [], NumericAnswer(value=math.nan)),
        ("numeric", [], NumericAnswer(value=1.0, tolerance=math.inf)),
        ("numeric", [], 3),  # not {value, tolerance}
        ("short_text", [], []),
        ("short_text", [], ["  "]),
        ("short_text", [], "paris"),
        ("short_text", ["a", "b"], ["a"]),  # no options
        ("essay", [], "anything"),
    ],
)
def test_ungradable_questions_are_refused(kind: str, options: list[str], answer: Any) -> None:
    with pytest.raises(Invalid):
        grading.validate_question(kind, options, answer)


@pytest.mark.parametrize(
    ("kind", "expected", "given", "right"),
    [
        ("single", 1, 1, True),
        ("single", 1, 0, False),
        ("single", 1, True, False),  # True == 1 in Python, but it is not an answer
        ("single", 1, "1", False),
        ("single", 1, None, False),
        ("multiple", [0, 2], [2, 0], True),
        ("multiple", [0, 2], [0, 2, 2], True),  # a repeated index is the same choice
        ("multiple", [0, 2], [0], False),
        ("multiple", [0, 2], [0, 1, 2], False),
        ("multiple", [0, 2], [0, "2"], False),
        ("multiple", [0, 2], 0, False),
        ("numeric", {"value": 3.14, "tolerance": 0.01}, 3.15, True),
        ("numeric", {"value": 3.14, "tolerance": 0.01}, 3.16, False),
        ("numeric", {"value": 2, "tolerance": 0}, 2, True),
        ("numeric", {"value": 2, "tolerance": 0}, True, False),
        ("numeric", {"value": 2, "tolerance": 0}, math.nan, False),
        ("numeric", {"value": 2, "tolerance": 0}, math.inf, False),
        ("numeric", {"value": 2, "tolerance": 0}, "2", False),
        ("short_text", ["paris"], " PARIS ", True),
        ("short_text", ["paris"], "Pa ris", False),
        ("short_text", ["strasse"], "Straße", True),  # casefold
        ("short_text", ["paris"], ["paris"], False),
        ("unknown", 1, 1, False),
    ],
)
def test_answers_right_and_wrong(kind: str, expected: Any, given: Any, right: bool) -> None:
    assert grading.is_correct(kind, expected, given) is right


def test_normalise_folds_width_case_and_spaces() -> None:
    assert grading.normalise("\uff30\uff41\uff52\uff49\uff53\t  Texas ") == "paris texas"

"""lmsd.portal.forms: a domain error shown by its code next to its field (translated), a msgspec
error mapped by its path, the form value helpers. Nothing here parses a message."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from litestar.datastructures import FormMultiDict

from lmsd.courses.schemas import Code, CourseIn, Lang
from lmsd.errors import Conflict, Invalid, LmsdError, NotFound
from lmsd.identity import service as identity
from lmsd.identity import sso
from lmsd.portal import forms, i18n
from lmsd.portal.forms import FormErrors


@pytest.fixture(autouse=True)
def english() -> None:
    i18n.activate("en")


def test_an_error_goes_under_its_field_by_code() -> None:
    errors = FormErrors()
    taken = Conflict("a course with code 'X' already exists", field="code", code="course.code_taken")
    assert errors.show(taken, ("code", "title"))
    assert errors == {"code": "A course with this code already exists on this campus: choose another code."}
    # the form's own field names: the service's "video_id" is the course page's "lesson_video"
    errors = FormErrors()
    elsewhere = Invalid("video_id names no video of this course", field="video_id", code="lesson.video_unknown")
    assert errors.show(elsewhere, {"title": "lesson_title", "video_id": "lesson_video"})
    assert errors == {"lesson_video": "Choose one of this course's videos."}


def test_the_message_follows_the_page_language() -> None:
    i18n.activate("fr")
    errors = FormErrors()
    errors.show(NotFound("nobody", field="email", code="enrolment.unknown_email"), ["email"])
    assert errors["email"] == i18n.gettext("Nobody on this campus has this e-mail address.") != (
        "Nobody on this campus has this e-mail address."
    )


def test_an_unknown_code_shows_the_message_and_no_field_falls_back_or_is_refused() -> None:
    odd = Invalid("ends_at must be after starts_at", field="ends_at", code="enrolment.dates")
    assert forms.message_for(odd) == "This value is not accepted: ends_at must be after starts_at"
    errors = FormErrors()
    assert errors.show(odd, ["email"], default="email") and "ends_at must be after" in errors["email"]
    # about nothing this form has, and no default: the caller re-raises (the error page)
    errors = FormErrors()
    assert not errors.show(NotFound("no such course"), ["email"]) and errors == {}
    assert not errors.show(LmsdError("x", field="password"), {"code": "code"}) and errors == {}


def test_convert_maps_a_validation_error_by_its_path() -> None:
    errors = FormErrors()
    good = forms.convert({"code": "ALG-1", "title": "Algebra", "tags": ["a"]}, CourseIn, errors)
    assert isinstance(good, CourseIn) and errors == {}
    for data, field in (
        ({"code": "ALG-1", "title": "x" * 301}, "title"),
        ({"code": "ALG-1", "title": "T", "tags": ["ok", "y" * 65]}, "tags"),
        ({"code": "bad code", "title": "T"}, "code"),
    ):
        errors = FormErrors()
        assert forms.convert(data, CourseIn, errors) is None
        assert list(errors) == [field] and errors[field].startswith("This value is not accepted: ")
    errors = FormErrors()
    assert forms.convert({"code": "A", "title": ""}, CourseIn, errors, {"title": "course_title"}) is None
    assert list(errors) == ["course_title"]
    try:
        msgspec.convert({"title": "T"}, CourseIn)
    except msgspec.ValidationError as exc:
        assert forms.field_of(exc) is None  # a missing field has no path below $
    assert forms.valid("MATH-101", Code) and not forms.valid("-x", Code)
    assert forms.valid("pt-BR", Lang) and not forms.valid("english!", Lang)


def test_form_values() -> None:
    form = FormMultiDict({"title": "  Algebra  ", "body": "  # Title\n", "box": "on", "id": str(uuid.UUID(int=7))})
    assert forms.text(form, "title") == "Algebra" and forms.text(form, "missing") == ""
    assert forms.text(form, "body", strip=False) == "  # Title\n"
    assert forms.flag(form, "box") and not forms.flag(form, "title") and not forms.flag(form, "missing")
    assert forms.uuid_or_none(forms.text(form, "id")) == uuid.UUID(int=7)
    assert forms.uuid_or_none("") is None and forms.uuid_or_none("nope") is None


def test_a_limit_in_a_message_is_the_services_constant() -> None:
    """Messages naming a limit take it from the service (LIMITS), formatted in the page's language."""
    (short,) = identity.password_problems("short")
    assert forms.message_for(short) == f"A password needs at least {identity.PASSWORD_MIN} characters."
    (slug,) = sso.provider_problems(sso.ProviderIn("Bad Slug", "IdP", "https://idp.example", "id", "secret"))
    assert forms.message_for(slug) == f"Use lowercase letters, digits and hyphens only, at most {sso.SLUG_MAX}."
    i18n.activate("fr")
    (long,) = identity.password_problems("x" * (identity.PASSWORD_MAX + 1))
    assert forms.message_for(long) == "Un mot de passe peut avoir au plus 1\u202f024 caractères."
    # every code with a limit has a message, and every such message names the limit
    assert set(forms.LIMITS) <= set(forms.MESSAGES)
    assert all("%(limit)s" in forms.MESSAGES[code] for code in forms.LIMITS)
    assert not any("%(limit)s" in text for code, text in forms.MESSAGES.items() if code not in forms.LIMITS)

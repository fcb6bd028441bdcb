"""The portal's languages: gettext catalogs, negotiation and localised dates and numbers.

Every string a page shows is an English msgid in a template (``{{ _("…") }}`` or
``{% trans %}``) or in Python (:func:`gettext`). Translations live as gettext ``.po`` files in
``lmsd/portal/locale/<lang>/LC_MESSAGES/*.po`` — one file per area of the portal, all merged —
and are read with Babel at first use (no compile step, nothing generated). A missing
translation shows the English text; ``tests/portal/test_portal_i18n.py`` fails the build when a
shipped language lacks one.

The language of a page is, in order: the signed-in user's profile choice, the ``lmsd_lang``
cookie set by the language picker, the browser's ``Accept-Language``, the campus default.
Dates and numbers are formatted by Babel with the page's locale (CLDR data).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import io
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "en"
# the languages shipped, each named in its own language (the picker shows them so)
LANGUAGES: dict[str, str] = {"en": "English", "fr": "Français", "es": "Español"}
LANG_COOKIE = "lmsd_lang"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("lmsd_portal_lang", default=DEFAULT)


@functools.cache
def translations(lang: str) -> NullTranslations:
    """All the catalogs of one language merged (English: none, msgids are English)."""
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    merged: NullTranslations | None = None
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        t = Translations(fp=buf)
        if merged is None:
            merged = t
        else:
            assert isinstance(merged, Translations)
            merged.merge(t)
    return merged or NullTranslations()


def supported(lang: str | None) -> str | None:
    """``lang`` if it is a shipped language (``fr-CA`` counts as ``fr``), else None."""
    if not lang:
        return None
    base = lang.strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def negotiate(profile: str | None, cookie: str | None, accept_language: str | None, campus_default: str) -> str:
    for choice in (profile, cookie):
        if found := supported(choice):
            return found
    if accept_language:
        weighted: list[tuple[float, int, str]] = []
        for index, part in enumerate(accept_language.split(",")):
            tag, _, params = part.strip().partition(";")
            q = 1.0
            if params.strip().startswith("q="):
                try:
                    q = float(params.strip()[2:])
                except ValueError:
                    q = 0.0
            if (found := supported(tag)) and q > 0:
                weighted.append((-q, index, found))
        if weighted:
            return min(weighted)[2]
    return supported(campus_default) or DEFAULT


def activate(lang: str) -> contextvars.Token[str]:
    """Make ``lang`` the language of what this task renders next."""
    return _current.set(supported(lang) or DEFAULT)


def current() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return translations(current()).gettext(message)


def N_(message: str) -> str:
    """Marks a msgid for extraction where it is translated later (a list of strings)."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ngettext(singular, plural, n)


def fmt_date(value: dt.date | dt.datetime | None, format: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return format_datetime(value, format=format, locale=current())
    return format_date(value, format=format, locale=current())


def fmt_number(value: float | int, digits: int = 0) -> str:
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=current())


def fmt_percent(fraction: float) -> str:
    return format_percent(fraction, locale=current())


def language_name(lang: str) -> str:
    return Locale.parse(lang).get_display_name(current()) or lang

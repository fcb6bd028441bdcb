"""Every string of the portal is translated into every shipped language, and the negotiation
and formatting follow the page's language."""

from __future__ import annotations

import datetime as dt

from lmsd.portal import i18n
from lmsd.portal.i18n_check import missing, used


def test_every_portal_string_is_translated() -> None:
    assert len(used()) > 20  # the extraction found the templates' strings
    gaps = {lang: sorted(items) for lang, items in missing().items() if items}
    assert not gaps, f"untranslated portal strings (run python -m lmsd.portal.i18n_check): {gaps}"


def test_negotiation_order() -> None:
    assert i18n.negotiate("es", "fr", "fr", "en") == "es"  # the profile first
    assert i18n.negotiate(None, "fr", "es", "en") == "fr"  # then the picker's cookie
    assert i18n.negotiate(None, None, "de-DE,es;q=0.8,fr;q=0.9", "en") == "fr"  # then the browser, by weight
    assert i18n.negotiate(None, None, "de, *;q=0.1", "es") == "es"  # then the campus default
    assert i18n.negotiate("xx", "zz", "fr;q=0", "nope") == "en"
    assert i18n.supported("fr-CA") == "fr" and i18n.supported("pt") is None


def test_dates_and_numbers_follow_the_language() -> None:
    when = dt.datetime(2026, 11, 25, 14, 30, tzinfo=dt.UTC)
    i18n.activate("fr")
    assert "nov." in i18n.fmt_date(when.date()) and i18n.fmt_number(12345.5, 1) == "12\u202f345,5"
    assert i18n.gettext("Sign in") == "Se connecter"
    i18n.activate("es")
    assert i18n.fmt_percent(0.25).replace("\xa0", " ") == "25 %"
    assert i18n.gettext("Sign in") == "Iniciar sesión"
    i18n.activate("en")
    assert i18n.fmt_date(when.date()) == "Nov 25, 2026" and i18n.fmt_number(12345.5, 1) == "12,345.5"

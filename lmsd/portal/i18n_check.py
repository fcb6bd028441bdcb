"""Which portal strings lack a translation: ``python -m lmsd.portal.i18n_check`` prints them as
``.po`` entries to fill in (and exits 1), per shipped language. The unit tests run the same check.

Strings are found where the portal marks them: ``_()``, ``gettext()``, ``ngettext()`` and
``{% trans %}`` in ``lmsd/portal/templates``; ``_()``/``gettext()``/``ngettext()``/``N_()`` in
``lmsd/portal/*.py`` and ``lmsd/portal/<package>/*.py`` (``_ = i18n.gettext``)."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from lmsd.portal.i18n import DEFAULT, LANGUAGES, LOCALE_DIR

PORTAL = Path(__file__).parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}


def used() -> dict[str, str]:
    """msgid (a plural's singular) → where it is first used."""
    found: dict[str, str] = {}
    # the portal's modules and those of its packages (learner/, teach/): one level down
    method_map = [("templates/**.html", "jinja2"), ("*.py", "python"), ("*/*.py", "python")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n,jinja2.ext.do"}}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        PORTAL, method_map=method_map, options_map=options, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def translated(lang: str) -> set[str]:
    ids: set[str] = set()
    for po in (LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po"):
        with po.open("rb") as f:
            for message in read_po(f, locale=lang):
                text = message.string
                msgid = message.id if isinstance(message.id, str) else message.id[0]
                if msgid and (all(text) if isinstance(text, tuple | list) else text):
                    ids.add(msgid)
    return ids


def missing() -> dict[str, dict[str, str]]:
    """language → {msgid: where} of strings used but not translated."""
    strings = used()
    return {
        lang: {m: where for m, where in strings.items() if m not in done}
        for lang in LANGUAGES if lang != DEFAULT
        for done in [translated(lang)]
    }


def main() -> int:
    gaps = missing()
    for lang, items in gaps.items():
        for msgid, where in sorted(items.items()):
            escaped = msgid.replace("\\", "\\\\").replace('"', '\\"')
            print(f'# {lang}: {where}\nmsgid "{escaped}"\nmsgstr ""\n')
    return 1 if any(gaps.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

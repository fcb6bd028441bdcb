"""The signed-in person's profile: display name and language (e-mail and role read-only).

The rules (a name of 1 to 200 characters, a shipped language) are the identity service's; the
page shows each problem under its field, by the error's field and code.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State

from lmsd.errors import Invalid
from lmsd.identity import service as identity
from lmsd.portal import i18n
from lmsd.portal.i18n import gettext as _
from lmsd.portal.learner.common import notice, role_name
from lmsd.portal.pages import FormErrors, Page, PortalPages, portal
from lmsd.server.session import DbSession


def _message(exc: Invalid) -> str:
    """The translated message of a profile rule, by its code (the service's English otherwise)."""
    messages = {
        "user.display_name_missing": _("Enter your name."),
        "user.display_name_too_long": _("Your name can have at most %(max)s characters.")
        % {"max": identity.DISPLAY_NAME_MAX},
        "user.locale_unknown": _("Choose one of the languages in the list."),
    }
    return messages.get(exc.code, str(exc))


class ProfilePages(PortalPages):
    path = "/"

    @get("/profile")
    async def profile(self, request: Request[Any, Any, State], db: DbSession, notice: str = "") -> Response[Any]:
        page = await portal(request, db)
        assert page.who is not None
        user = await identity.get_user(db, page.who, page.who.user_id)
        return _profile_page(page, user, user.display_name, user.locale, FormErrors(), _notice(notice))

    @post("/profile", status_code=303)
    async def save_profile(self, request: Request[Any, Any, State], db: DbSession) -> Response[Any]:
        page = await portal(request, db)
        form = await request.form()
        page.check_csrf(str(form.get("csrf_token", "")))
        assert page.who is not None
        user = await identity.get_user(db, page.who, page.who.user_id)
        name = " ".join(str(form.get("display_name", "")).split())
        lang = str(form.get("language", "")).strip()
        errors = FormErrors()
        for problem in identity.profile_problems(name, lang):
            errors.setdefault(problem.field or "display_name", _message(problem))
        if errors:
            return _profile_page(page, user, name, lang, errors, status=422)
        await identity.update_profile(db, page.who, name, lang)
        page.remember_language(lang)
        return page.redirect("/profile?notice=saved")


_notice = notice  # the handler's query parameter is called notice too


def _profile_page(
    page: Page, user: Any, name: str, lang: str, errors: FormErrors, message: str = "", status: int = 200
) -> Response[Any]:
    return page.render(
        "learner/profile.html", status=status, title=_("Profile"), user=user, name=name, language=lang,
        errors=errors, notice=message, role=role_name(user.role),
        language_options=list(i18n.LANGUAGES.items()),
    )

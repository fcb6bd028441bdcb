"""The composition root: every capability's routes, the portal, and the core's generic parts in
one Litestar app. Everything it needs comes in through :func:`create_app`'s arguments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

import lmsd
from lmsd.app.errors import CAPABILITY_STATUS
from lmsd.campuses.controller import CampusController
from lmsd.courses.controller import CourseController, LessonController, ModuleController, MyCoursesController
from lmsd.credentials import Secrets
from lmsd.db.routing import Database
from lmsd.enrolments.controller import EnrolmentController
from lmsd.errors import Unauthorized
from lmsd.identity.controller import AuthController, MeController, UserController
from lmsd.identity.sso_controller import SsoController
from lmsd.identity.tokens import TokenIssuer
from lmsd.learning.controller import LearningController
from lmsd.media.controller import MediaPlaylistController, UploadController, VideoController
from lmsd.media.pathways import PathwayHealth
from lmsd.ops.status import collect as status_report
from lmsd.policy import Identity
from lmsd.portal.account import AccountPages
from lmsd.portal.admin import AdminPages
from lmsd.portal.learner import LearnerPages
from lmsd.portal.pages import COOKIE, CSRF_HEADER, check_csrf, html_error
from lmsd.portal.pwa import PwaPages
from lmsd.portal.static_files import favicon, static_file
from lmsd.portal.teach import TeachPages
from lmsd.portal.watch import WatchController
from lmsd.quizzes.controller import QuizController
from lmsd.server.errors import HANDLERS, http_error, register
from lmsd.server.openapi import document_problems
from lmsd.server.routes import campus_info, healthz
from lmsd.server.strict import StrictRequest
from lmsd.server.unit_of_work import closing_middleware, finish, provide_session
from lmsd.settings import Settings

ROUTES: list[ControllerRouterHandler] = [
    healthz,
    campus_info,
    AuthController,
    MeController,
    UserController,
    SsoController,
    CampusController,
    CourseController,
    ModuleController,
    LessonController,
    MyCoursesController,
    EnrolmentController,
    QuizController,
    LearningController,
    UploadController,
    VideoController,
    MediaPlaylistController,
    AccountPages,
    LearnerPages,
    TeachPages,
    AdminPages,
    PwaPages,
    WatchController,
    static_file,
    favicon,
]

MACHINE_PREFIXES = ("/api/", "/static/", "/media/", "/healthz", "/readyz")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def unmatched_route(request: Request[object, object, State], exc: Exception) -> Response[object]:
    """A URL no route matched: problem+json for the API and files, the portal's page for people."""
    machine = request.url.path.startswith(MACHINE_PREFIXES)
    return http_error(request, exc) if machine else html_error(request, exc)  # type: ignore[return-value]


async def provide_identity(request: Request[object, object, State]) -> Identity:
    """The caller: a bearer token, or the portal's session cookie. A cookie is sent by the
    browser on its own, so a state-changing call made with it must also carry the session's
    CSRF token (``X-CSRF-Token``, which only the portal's pages know) and come from the portal."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:]
    else:
        token = request.cookies.get(COOKIE, "")
        if token and request.method not in SAFE_METHODS:
            check_csrf(request, token, request.headers.get(CSRF_HEADER, ""))
    if not token:
        raise Unauthorized("sign in first")
    issuer: TokenIssuer = request.app.state.issuer
    return issuer.verify(token)


def create_app(settings: Settings, secrets: Secrets) -> Litestar:
    register(CAPABILITY_STATUS)
    database = Database.from_settings(settings, secrets, pool_size=5)
    pathway_health = PathwayHealth(settings.media)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pathway_health.start()
        try:
            yield
        finally:
            await pathway_health.stop()
            await database.dispose()

    state = State(
        {
            "settings": settings,
            "engine": database.primary,
            "database": database,
            "issuer": TokenIssuer(secrets, issuer=settings.portal_url.rstrip("/")),
            "secrets": secrets,
            "pathway_health": pathway_health,
            "status_report": status_report,  # the admin's health page (lmsd.portal.admin)
        }
    )
    app = Litestar(
        route_handlers=ROUTES,
        dependencies={
            "db": Provide(provide_session),
            "identity": Provide(provide_identity),
        },
        exception_handlers={**HANDLERS, HTTPException: unmatched_route},  # type: ignore[dict-item]
        # The unit of work ends as the response starts: commit on 2xx/3xx, else roll back.
        before_send=[finish],
        middleware=[closing_middleware],
        state=state,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="lmsd API",
            version=lmsd.__version__,
            path="/api/v1/schema",
            description="The campus API. Errors are RFC 9457 application/problem+json.",
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
            ),
            security=[{"bearer": []}],
        ),
        request_max_body_size=1024 * 1024,
        request_class=StrictRequest,  # JSON bodies converted strictly, as the document says
    )
    document_problems(app)
    return app


__all__ = ["ROUTES", "create_app", "provide_identity"]

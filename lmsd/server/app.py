"""Litestar app factory. Everything it needs comes in through ``create_app``'s arguments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import lmsd
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
from lmsd.policy import Identity
from lmsd.portal.admin import AdminPages
from lmsd.portal.controller import PortalController
from lmsd.portal.learner import LearnerPages
from lmsd.portal.pages import COOKIE, CSRF_HEADER, check_csrf, html_error
from lmsd.portal.pwa import PwaPages
from lmsd.portal.static_files import favicon, static_file
from lmsd.portal.teach import TeachPages
from lmsd.portal.watch import WatchController
from lmsd.quizzes.controller import QuizController
from lmsd.server.consistency import client_lsn, lsn_middleware, remember
from lmsd.server.errors import HANDLERS, http_error, problem
from lmsd.server.openapi import document_problems
from lmsd.settings import Settings


@get("/healthz", include_in_schema=False)
async def healthz(state: State) -> object:
    """Liveness and readiness in one: the database answers and the schema revision is known."""
    try:
        async with state.engine.connect() as conn:
            schema = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:  # noqa: BLE001 - any database failure makes the worker unhealthy
        try:
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001
            return problem(503, "Unavailable", "database unreachable", version=lmsd.__version__)
        schema = "none (not migrated)"
    return {"status": "ok", "service": "lmsd-api", "version": lmsd.__version__, "database": "ok", "schema": schema}


@get("/api/v1/campus")
async def campus_info(state: State) -> dict[str, str]:
    """Public facts about this campus, for the portal and federation peers."""
    settings: Settings = state.settings
    return {"id": settings.campus.id, "name": settings.campus.name, "host": settings.campus.host}


async def provide_session(state: State, request: Request[object, object, State]) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed when the handler succeeds, else rolled back.

    Services may commit early when an effect must stand although the request fails (a failed
    sign-in's counter, a revoked token family). Reads may go to a read replica that has caught
    up with the client's LSN token; the token of this request's writes goes back to the client
    (:mod:`lmsd.server.consistency`), even when a later step failed after an early commit.
    """
    database: Database = state.database
    session = await database.session(min_lsn=client_lsn(request.headers, request.cookies))
    async with session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
        finally:
            remember(request.scope, session.lsn)


def unmatched_route(request: Request[object, object, State], exc: Exception) -> Response[object]:
    """A URL no route matched: problem+json for the API and files, the portal's page for people."""
    machine = request.url.path.startswith(MACHINE_PREFIXES)
    return http_error(request, exc) if machine else html_error(request, exc)  # type: ignore[return-value]


MACHINE_PREFIXES = ("/api/", "/static/", "/media/", "/healthz", "/readyz")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
        }
    )
    app = Litestar(
        route_handlers=[
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
            PortalController,
            LearnerPages,
            TeachPages,
            AdminPages,
            PwaPages,
            WatchController,
            static_file,
            favicon,
        ],
        dependencies={
            "db": Provide(provide_session),
            "identity": Provide(provide_identity),
        },
        exception_handlers={**HANDLERS, HTTPException: unmatched_route},  # type: ignore[dict-item]
        middleware=[lsn_middleware],
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
    )
    document_problems(app)
    return app

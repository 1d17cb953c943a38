"""The web UI's app: routes, sessions, security headers and error pages.

Pages are rendered on the server (Jinja2, autoescaped); the few scripts (htmx, uPlot and the
UI's own) are static files of the package, so the Content-Security-Policy allows this origin
only and nothing inline. Views read the store through ``shipyard.tracking`` and
``shipyard.registry`` and run in a thread, never on the event loop.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard import __version__
from shipyard.errors import (
    ArtifactIntegrityError,
    ModelNotFoundError,
    ShipyardError,
    StoreError,
    TrackingError,
)
from shipyard.registry import Registry
from shipyard.store import Store
from shipyard.ui._auth import Session, UiAuth, check_csrf, current_session, log_in
from shipyard.ui._format import FILTERS

if TYPE_CHECKING:
    from shipyard.ui._serving import Scraper

__all__ = ["CSP", "PageError", "View", "create_app"]

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""The pages' Content-Security-Policy: this origin only, nothing inline, never framed."""
_MAX_FORM_BYTES = 64 * 1024
_COOKIE = "shipyard_ui"


class PageError(Exception):
    """A page that cannot be shown: its status and a message for the visitor."""

    def __init__(self, status: int, message: str, title: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.title = title


@dataclass
class UiState:
    """What every view needs (one per app)."""

    store: Store
    auth: UiAuth
    templates: jinja2.Environment
    scraper: Scraper
    registry: Registry = field(init=False)

    def __post_init__(self) -> None:
        self.registry = Registry(self.store)


@dataclass
class View:
    """One request as a view sees it: the visitor, the form, and how to answer."""

    request: Request
    ui: UiState
    session: Session
    form: Mapping[str, str] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        """The store the UI reads."""
        return self.ui.store

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """The page ``template`` with ``values``."""
        flash = self.request.session.pop("flash", None)
        html = self.ui.templates.get_template(template).render(
            request=self.request,
            session=self.session,
            auth_required=self.ui.auth.required,
            version=__version__,
            flash=flash,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def flash(self, message: str) -> None:
        """A message for the next page this visitor sees (after a redirect)."""
        self.request.session["flash"] = message


ViewFunction = Callable[[View], Response]


def create_app(
    store: Store,
    *,
    auth: UiAuth | None = None,
    server: str | None = None,
    server_key: str | None = None,
) -> Starlette:
    """The web UI over ``store``: runs, run details, comparisons, models, monitoring and a
    live view of a running server.

    Args:
        store: the store to show (only read, except alias moves by admins).
        auth: who may use it; the default (no keys) lets every visitor in, which
            ``shipyard ui`` allows on loopback hosts only.
        server: the base URL of a running ``shipyard serve`` the serving page shows
            (visitors may give another).
        server_key: an API key for ``server`` (role read or admin), sent to it only and
            never shown.

    Raises:
        ValueError: ``server`` is not an http:// or https:// URL.

    Returns:
        An ASGI app (serve it with uvicorn, or test it with Starlette's ``TestClient``).

    Example:
        >>> app = create_app(Store.open(root=".shipyard"))  # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1", port=8765)  # doctest: +SKIP
    """
    # the views import this module's View and PageError: imported here, once it is loaded
    from shipyard.ui._models import model_page, models_page, promote, rollback
    from shipyard.ui._monitoring import (
        check_page,
        model_monitoring,
        monitoring_page,
        version_monitoring,
    )
    from shipyard.ui._runs import artifact, compare_page, run_page, runs_page
    from shipyard.ui._serving import Scraper, live_fragment, serving_page

    auth = auth or UiAuth()
    state = UiState(store, auth, _templates(), Scraper(server, server_key))
    routes = [
        Route("/", _home),
        Route("/health", _health),
        Route("/login", _endpoint(_login_page, need=None), methods=["GET"]),
        Route("/login", _endpoint(_login, need=None, post=True), methods=["POST"]),
        Route("/logout", _endpoint(_logout, need=None, post=True), methods=["POST"]),
        Route("/runs", _endpoint(runs_page)),
        Route("/runs/{run_id}", _endpoint(run_page)),
        Route("/runs/{run_id}/artifacts/{path:path}", _endpoint(artifact)),
        Route("/compare", _endpoint(compare_page)),
        Route("/models", _endpoint(models_page)),
        Route("/models/{name}", _endpoint(model_page)),
        Route("/models/{name}/monitoring", _endpoint(model_monitoring)),
        Route("/models/{name}/versions/{version}/monitoring", _endpoint(version_monitoring)),
        Route("/monitoring", _endpoint(monitoring_page)),
        Route("/monitoring/checks/{check_id}", _endpoint(check_page)),
        Route("/serving", _endpoint(serving_page)),
        Route("/serving/live", _endpoint(live_fragment)),
        Route(
            "/models/{name}/promote",
            _endpoint(promote, need="admin", post=True),
            methods=["POST"],
        ),
        Route(
            "/models/{name}/rollback",
            _endpoint(rollback, need="admin", post=True),
            methods=["POST"],
        ),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=auth.secret or secrets.token_urlsafe(32),
            session_cookie=_COOKIE,
            max_age=auth.session_seconds,
            same_site="strict",
            https_only=auth.https,
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
    )
    app.state.ui = state
    return app


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


class SecurityHeaders:
    """Adds the security headers to every response: the CSP (unless the response set a
    stricter one), no MIME sniffing, no framing; pages are never cached, static files are.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", CSP)
                headers["x-content-type-options"] = "nosniff"
                headers["x-frame-options"] = "DENY"
                headers["referrer-policy"] = "same-origin"
                headers.setdefault("cache-control", "max-age=3600" if static else "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _endpoint(
    view: ViewFunction, *, need: str | None = "read", post: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """A route's endpoint: the visitor checked, the form read and its CSRF token checked,
    then ``view`` run in a thread; errors become pages."""

    async def endpoint(request: Request) -> Response:
        ui: UiState = request.app.state.ui
        session = current_session(request, ui.auth)
        ctx = View(request, ui, session)
        if need is not None and not session.can_read:
            if post:
                return _error_page(ctx, 403, "log in first: this action needs an API key")
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.headers.get("hx-request") == "true":  # a fragment (the session ended):
                page = urlsplit(request.headers.get("hx-current-url", ""))  # reload the page
                target = page.path + (f"?{page.query}" if page.query else "") or target
                return Response(headers={"HX-Redirect": f"/login?next={quote(target)}"})
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        if post:
            try:
                ctx.form = await _read_form(request)
            except PageError as exc:
                return _error_page(ctx, exc.status, exc.message)
            if not check_csrf(session, ctx.form.get("csrf")):
                message = (
                    "the form's security token (CSRF) is missing or does not match this "
                    "session; reload the page and submit it again"
                )
                return _error_page(ctx, 403, message)
            if need == "admin" and not session.can_admin:
                message = (
                    f"your key's role {session.role!r} may look but not change anything; "
                    "log in with an admin key"
                )
                return _error_page(ctx, 403, message)
        try:
            return await run_in_threadpool(view, ctx)
        except PageError as exc:
            return _error_page(ctx, exc.status, exc.message, exc.title)
        except ShipyardError as exc:
            return _error_page(ctx, _status_of(exc), str(exc))
        except Exception:
            logger.exception("the page %s failed", request.url.path)
            message = "something went wrong showing this page; the UI's log has the details"
            return _error_page(ctx, 500, message)

    return endpoint


def _status_of(exc: ShipyardError) -> int:
    if isinstance(exc, (TrackingError, ModelNotFoundError)):
        return 404
    if isinstance(exc, ArtifactIntegrityError):
        return 409
    if isinstance(exc, StoreError):
        return 503
    return 400


def _error_page(ctx: View, status: int, message: str, title: str | None = None) -> Response:
    titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
    heading = title or titles.get(status, "Error")
    try:
        return ctx.render("error.html.j2", status=status, title=heading, message=message)
    except Exception:  # the template itself failed: plain text still says what happened
        logger.exception("the error page failed")
        return PlainTextResponse(f"{heading}: {message}", status_code=status)


async def _read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form's fields (the last value of each name)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise PageError(415, f"expected a form (application/x-www-form-urlencoded), got {kind!r}")
    too_large = PageError(413, f"the form is larger than {_MAX_FORM_BYTES // 1024} KiB")
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > _MAX_FORM_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():  # read no further than the limit, whatever was declared
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise too_large
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def _home(request: Request) -> Response:
    return RedirectResponse("/runs", status_code=307)


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods: the error page (a plain text one for static files)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if request.url.path.startswith("/static/") or "session" not in request.scope:
        return PlainTextResponse(f"{status}: {getattr(exc, 'detail', '')}", status_code=status)
    ui: UiState = request.app.state.ui
    ctx = View(request, ui, current_session(request, ui.auth))
    messages = {404: f"there is no page at {request.url.path}", 405: "method not allowed"}
    return _error_page(ctx, status, messages.get(status, str(getattr(exc, "detail", ""))))


def _login_page(ctx: View) -> Response:
    if not ctx.ui.auth.required:
        return RedirectResponse("/runs", status_code=303)
    next_page = _safe_next(ctx.request.query_params.get("next"))
    return ctx.render("login.html.j2", next_page=next_page, error=None)


def _login(ctx: View) -> Response:
    next_page = _safe_next(ctx.form.get("next"))
    if not ctx.ui.auth.required:
        return RedirectResponse(next_page, status_code=303)
    problem = log_in(ctx.request, ctx.ui.auth, ctx.form.get("key", ""))
    if problem is not None:
        logger.info("a UI login was refused: %s", problem)  # the key itself is never logged
        ctx.session = current_session(ctx.request, ctx.ui.auth)
        return ctx.render("login.html.j2", status=401, next_page=next_page, error=problem)
    logger.info("a UI login with %s", ctx.request.session.get("who"))
    return RedirectResponse(next_page, status_code=303)


def _logout(ctx: View) -> Response:
    ctx.request.session.clear()
    return RedirectResponse("/login" if ctx.ui.auth.required else "/runs", status_code=303)


def _safe_next(target: str | None) -> str:
    """A page of this UI to go to after logging in (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/runs"
    return target

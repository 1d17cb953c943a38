"""Optional API keys for the server: kept as sha256 digests, compared in constant time.

Keys come from a file (one a line) or ``SHIPYARD_API_KEYS`` (comma-separated), read by the
entry point; a line may hold a key or, so that the key itself need not be stored anywhere, its
digest as ``sha256:<hex>``, optionally followed by a role: ``role=predict`` (the predict
endpoints only), ``role=read`` (metadata and metrics only) or ``role=admin`` (everything; the
default). Only digests are kept in memory, and no key or digest is ever logged. A request
names its key as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; without a valid one it
gets a 401, and with one whose role does not allow the path a 403 naming the role, both before
its body is read. Liveness, readiness and the API docs stay open, so probes and people reading
the schema need no key. Reading the keys is :mod:`shipyard._apikeys`' (``shipyard ui`` reads
the same file).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard._apikeys import ROLES, digest_key, load_api_key_roles, load_api_keys
from shipyard.serve._limits import error_body, send_json

__all__ = [
    "PUBLIC_PATHS",
    "ROLES",
    "ApiKeyMiddleware",
    "digest_key",
    "is_predict",
    "is_public",
    "load_api_key_roles",
    "load_api_keys",
    "presented_key",
]

_AUTH_LOC = ["header", "authorization"]

PUBLIC_PATHS = ("/health", "/ready", "/v2/health/live", "/v2/health/ready")
"""Paths that never need a key (probes)."""
_PUBLIC_PREFIXES = ("/docs", "/redoc", "/openapi.json")


class ApiKeyMiddleware:
    """Refuse requests without a valid API key (401), except on the public paths.

    Args:
        app: the ASGI app to protect.
        digests: the accepted keys' sha256 hex digests.
        on_refused: called once per refused request (metrics).
        roles: each digest's role (``predict``, ``read``, ``admin``); a digest not in it
            may do everything.
        on_forbidden: called once per request refused for its key's role (a 403).
    """

    def __init__(
        self,
        app: ASGIApp,
        digests: Iterable[str],
        on_refused: Callable[[], None] | None = None,
        roles: Mapping[str, str] | None = None,
        on_forbidden: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self._digests = tuple(digests)
        self._on_refused = on_refused
        self._roles = dict(roles or {})
        self._on_forbidden = on_forbidden

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        digest = self._matching(scope)
        if digest is not None:
            role = self._roles.get(digest, "admin")
            if _permits(role, scope["path"]):
                await self.app(scope, receive, send)
                return
            if self._on_forbidden is not None:
                self._on_forbidden()
            what = f"{scope['method']} {scope['path']}"
            msg = f"this API key's role {role!r} does not allow {what}"
            await send_json(send, 403, error_body(msg, type_="forbidden", loc=_AUTH_LOC))
            return
        if self._on_refused is not None:
            self._on_refused()
        msg = "a valid API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
        await send_json(
            send,
            401,
            error_body(msg, type_="unauthorized", loc=_AUTH_LOC),
            ((b"www-authenticate", b'Bearer realm="shipyard"'),),
        )

    def _matching(self, scope: Scope) -> str | None:
        """The digest of the valid key the request presents, or ``None``."""
        presented = presented_key(scope)
        if presented is None:
            return None
        digest = digest_key(presented)
        found = None
        for known in self._digests:  # every digest compared: the time says nothing
            if hmac.compare_digest(known, digest):
                found = known
        return found


def is_predict(path: str) -> bool:
    """Whether ``path`` is a predict endpoint (``/predict``, a V2 ``infer``)."""
    return path == "/predict" or (path.startswith("/v2/models/") and path.endswith("/infer"))


def _permits(role: str, path: str) -> bool:
    if role == "admin":
        return True
    return is_predict(path) if role == "predict" else not is_predict(path)


def is_public(path: str) -> bool:
    """Whether ``path`` needs no key (probes, docs)."""
    return path in PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES)


def presented_key(scope: Scope) -> str | None:
    """The API key a request presents (``Authorization: Bearer`` or ``X-API-Key``)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return str(value.decode("latin-1").strip())
    return None

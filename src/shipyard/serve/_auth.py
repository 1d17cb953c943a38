"""Optional API keys for the server: kept as sha256 digests, compared in constant time.

Keys come from a file (one a line) or ``SHIPYARD_API_KEYS`` (comma-separated), read by the
entry point; a line may hold a key or, so that the key itself need not be stored anywhere, its
digest as ``sha256:<hex>``. Only digests are kept in memory, and no key or digest is ever
logged. A request names its key as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``;
without a valid one it gets a 401 before its body is read. Liveness, readiness and the API
docs stay open, so probes and people reading the schema need no key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.errors import ShipyardError

__all__ = [
    "PUBLIC_PATHS",
    "ApiKeyMiddleware",
    "digest_key",
    "is_public",
    "load_api_keys",
    "presented_key",
]

PUBLIC_PATHS = ("/health", "/ready", "/v2/health/live", "/v2/health/ready")
"""Paths that never need a key (probes)."""
_PUBLIC_PREFIXES = ("/docs", "/redoc", "/openapi.json")
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


def digest_key(key: str) -> str:
    """The sha256 hex digest a key is kept as.

    Example:
        >>> digest_key("s3cret")[:16]
        '1ec1c26b50d5d3c5'
    """
    return hashlib.sha256(key.encode()).hexdigest()


def load_api_keys(*, file: Path | None = None, env_value: str | None = None) -> tuple[str, ...]:
    """Read API keys from a file and/or an environment value; return their digests.

    Args:
        file: one key (or ``sha256:<hex>`` digest) a line; blank lines and ``#`` comments
            are skipped.
        env_value: keys or digests separated by commas (``SHIPYARD_API_KEYS``).

    Returns:
        The distinct digests, sorted; empty when neither source holds a key.

    Raises:
        ShipyardError: the file cannot be read, or an entry is too short to be a key (fewer
            than 16 characters), naming the file and line but never the entry.
    """
    entries: list[tuple[str, str]] = []
    if file is not None:
        try:
            lines = file.read_text().splitlines()
        except OSError as exc:
            msg = f"cannot read the API keys file {file}: {exc.strerror or exc}"
            raise ShipyardError(msg) from exc
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if text and not text.startswith("#"):
                entries.append((f"{file}:{number}", text))
    for i, part in enumerate((env_value or "").split(","), start=1):
        if part.strip():
            entries.append((f"SHIPYARD_API_KEYS entry {i}", part.strip()))
    return tuple(sorted({_to_digest(where, entry) for where, entry in entries}))


def _to_digest(where: str, entry: str) -> str:
    found = _DIGEST.match(entry)
    if found:
        return found.group(1)
    if len(entry) < 16:
        msg = f"{where}: an API key must be at least 16 characters (or sha256:<64 hex digits>)"
        raise ShipyardError(msg)
    return digest_key(entry)


class ApiKeyMiddleware:
    """Refuse requests without a valid API key (401), except on the public paths.

    Args:
        app: the ASGI app to protect.
        digests: the accepted keys' sha256 hex digests.
        on_refused: called once per refused request (metrics).
    """

    def __init__(
        self,
        app: ASGIApp,
        digests: Iterable[str],
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self._digests = tuple(digests)
        self._on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]) or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        if self._on_refused is not None:
            self._on_refused()
        body = json.dumps(
            {
                "detail": [
                    {
                        "field": None,
                        "loc": ["header", "authorization"],
                        "msg": "a valid API key is required: send 'Authorization: Bearer KEY' "
                        "or 'X-API-Key: KEY'",
                        "input": None,
                        "type": "unauthorized",
                    }
                ]
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"www-authenticate", b'Bearer realm="shipyard"'),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: Scope) -> bool:
        presented = presented_key(scope)
        if presented is None:
            return False
        digest = digest_key(presented)
        ok = False
        for known in self._digests:  # every digest compared: the time says nothing
            ok |= hmac.compare_digest(known, digest)
        return ok


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

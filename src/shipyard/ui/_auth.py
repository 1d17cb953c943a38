"""Who may use the web UI, and the CSRF token of every form.

Without API keys the UI is open (``shipyard ui`` allows that only on a loopback host): every
visitor may read and, like the CLI on the same machine, promote and roll back. With keys (the
file format of ``shipyard serve``: :mod:`shipyard._apikeys`), a visitor logs in with a key on
``/login``; the session is a signed cookie (HttpOnly, ``SameSite=Strict``, ``Secure`` under
TLS) that ends ``session_seconds`` after the login, however active it is. Role ``read`` sees
every page, ``admin`` may also move aliases; ``predict`` keys cannot log in.

Every session, logged in or not, holds a random CSRF token; every form that changes something
carries it, and a POST whose token is missing or different gets a 403 (compared in constant
time). Keys are never kept in the session, rendered or logged: only which key (the first 8
hex digits of its digest) and its role.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from shipyard._apikeys import digest_key

__all__ = ["SESSION_SECONDS", "Session", "UiAuth", "check_csrf", "current_session", "log_in"]

#: How long a login lasts by default: a working day.
SESSION_SECONDS = 8 * 3600
_UI_ROLES = ("read", "admin")


@dataclass(frozen=True)
class UiAuth:
    """How the UI authenticates.

    Attributes:
        key_roles: the accepted API keys' sha256 digests and their roles (``read``,
            ``admin``, ``predict``), as :func:`shipyard._apikeys.load_api_key_roles` reads
            them; empty: no login, every visitor is ``admin``.
        secret: signs the session cookies; ``None``: a random one per app (sessions end
            when the UI restarts).
        session_seconds: how long a login lasts.
        https: the UI is served over TLS (cookies get ``Secure``).
        anonymous_user: who an alias move is recorded as without keys (the CLI records the
            login name, ``SHIPYARD_USER``, the same way).
    """

    key_roles: Mapping[str, str] = field(default_factory=dict)
    secret: str | None = None
    session_seconds: int = SESSION_SECONDS
    https: bool = False
    anonymous_user: str = "ui"

    @property
    def required(self) -> bool:
        """Whether visitors must log in."""
        return bool(self.key_roles)

    def role_of(self, key: str) -> tuple[str, str] | None:
        """``(digest, role)`` of a presented key, ``None`` when it is not one of the keys.

        Every digest is compared (in constant time), so the time taken says nothing.
        """
        presented = digest_key(key)
        found = None
        for known, role in self.key_roles.items():
            if hmac.compare_digest(known, presented):
                found = (known, role)
        return found


@dataclass(frozen=True)
class Session:
    """The visitor: who, with which role, and the session's CSRF token.

    Attributes:
        role: ``admin``, ``read``, or ``None`` when a login is needed and there is none.
        who: who alias moves are recorded as (``key 1a2b3c4d`` or the anonymous user).
        csrf: the token every form must send back.
        logged_in: whether the visitor logged in with a key.
        expires_at: when the login ends (epoch seconds), ``None`` without a login.
    """

    role: str | None
    who: str
    csrf: str
    logged_in: bool = False
    expires_at: float | None = None

    @property
    def can_read(self) -> bool:
        """Whether the visitor may see the pages."""
        return self.role in _UI_ROLES

    @property
    def can_admin(self) -> bool:
        """Whether the visitor may promote and roll back."""
        return self.role == "admin"


def current_session(request: Request, auth: UiAuth) -> Session:
    """The visitor of ``request``; gives the session a CSRF token when it has none and
    forgets a login that has expired."""
    data: dict[str, Any] = request.session
    if not data.get("csrf"):
        data["csrf"] = secrets.token_urlsafe(32)
    if not auth.required:
        return Session("admin", auth.anonymous_user, data["csrf"])
    expires = data.get("expires_at")
    role = data.get("role")
    if role not in _UI_ROLES or not isinstance(expires, (int, float)) or expires <= time.time():
        for name in ("role", "who", "expires_at"):
            data.pop(name, None)
        return Session(None, "", data["csrf"])
    return Session(role, str(data.get("who", "")), data["csrf"], True, float(expires))


def log_in(request: Request, auth: UiAuth, key: str) -> str | None:
    """Start a session for ``key``; returns why it is refused, ``None`` on success.

    A login gets a fresh CSRF token (a token seen before the login is worth nothing after).
    """
    found = auth.role_of(key.strip()) if key.strip() else None
    if found is None:
        return "that key is not one of the UI's API keys"
    digest, role = found
    if role not in _UI_ROLES:
        return f"this key's role {role!r} allows predictions only; the UI needs read or admin"
    request.session.clear()
    request.session.update(
        {
            "csrf": secrets.token_urlsafe(32),
            "role": role,
            "who": f"key {digest[:8]}",
            "expires_at": time.time() + auth.session_seconds,
        }
    )
    return None


def check_csrf(session: Session, sent: str | None) -> bool:
    """Whether a form sent this session's CSRF token (compared in constant time)."""
    if not sent:
        return False
    return hmac.compare_digest(session.csrf.encode(), sent.encode())

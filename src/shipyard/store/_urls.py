"""Showing store locations without their secrets: database URLs and artifact roots."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa

__all__ = ["redact_root", "redact_url"]

_PASSWORD_RE = re.compile(r"(://[^:/@]*:)[^@/]*@")
_MASK = "***"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe to log or show.

    Args:
        url: a SQLAlchemy database URL (it need not be valid).

    Returns:
        The URL without its password.

    Example:
        >>> redact_url("postgresql://me:secret@db/shipyard")
        'postgresql://me:***@db/shipyard'
    """
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):  # unparseable: still hide the password
        return _PASSWORD_RE.sub(r"\1***@", url)


def redact_root(root: str) -> str:
    """An artifact root (a folder or an fsspec URL) safe to log, show or store: a password
    in the URL's user part and every query value are replaced by ``***``.

    Credentials belong in the environment (``AWS_ACCESS_KEY_ID``, ...), but a root such as
    ``sftp://me:pw@host/sy`` or ``s3://b/sy?secret=...`` must not leak through a message.

    Args:
        root: a local path or a URL.

    Returns:
        ``root`` unchanged when it holds nothing secret, else its redacted form.

    Example:
        >>> redact_root("sftp://me:pw@host/sy?key=abc")
        'sftp://me:***@host/sy?key=***'
    """
    if "://" not in root or ("@" not in root and "?" not in root):
        return root
    try:
        parts = urlsplit(root)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{_MASK}@{host}" if ":" in userinfo else f"{userinfo}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(key, _MASK) for key, _ in pairs], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # unparseable: keep only what precedes any user part or query
        return root.split("?", 1)[0].split("://", 1)[0] + "://" + _MASK

"""API keys and their roles, as ``shipyard serve`` and ``shipyard ui`` read them.

Keys come from a file (one a line) or ``SHIPYARD_API_KEYS`` (comma-separated), read by the
entry point; a line may hold a key or, so that the key itself need not be stored anywhere, its
digest as ``sha256:<hex>``, optionally followed by a role: ``role=predict`` (the predict
endpoints only), ``role=read`` (metadata, metrics, the UI's pages) or ``role=admin``
(everything; the default). Only digests are kept in memory, and no key or digest is ever
logged. Both entry points check keys with this module, so one file serves both.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from shipyard.errors import ShipyardError

__all__ = ["ROLES", "digest_key", "load_api_key_roles", "load_api_keys"]

ROLES = ("predict", "read", "admin")
"""What a key may do: the predict endpoints, the metadata and metrics, or everything."""

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
        file: one key (or ``sha256:<hex>`` digest) a line, optionally followed by
            ``role=predict|read|admin``; blank lines and ``#`` comments are skipped.
        env_value: entries separated by commas (``SHIPYARD_API_KEYS``), each as a file line.

    Returns:
        The distinct digests, sorted; empty when neither source holds a key.

    Raises:
        ShipyardError: the file cannot be read, an entry is too short to be a key (fewer
            than 16 characters), or a role is unknown, naming the file and line but never
            the entry.
    """
    return tuple(sorted(load_api_key_roles(file=file, env_value=env_value)))


def load_api_key_roles(*, file: Path | None = None, env_value: str | None = None) -> dict[str, str]:
    """Read API keys and their roles: ``{digest: role}`` (see :func:`load_api_keys`).

    A key given twice keeps its widest role.

    Raises:
        ShipyardError: as :func:`load_api_keys`.
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
    roles: dict[str, str] = {}
    for where, entry in entries:
        key, role = _split_role(where, entry)
        digest = _to_digest(where, key)
        if ROLES.index(role) > ROLES.index(roles.get(digest, role)):
            roles[digest] = role
        roles.setdefault(digest, role)
    return roles


def _split_role(where: str, entry: str) -> tuple[str, str]:
    key, *options = entry.split()
    role = "admin"
    for option in options:
        name, _, value = option.partition("=")
        if name != "role" or value not in ROLES:
            msg = (
                f"{where}: after the key, expected role=predict, role=read or role=admin "
                f"(found {option.split('=')[0]!r})"
            )
            raise ShipyardError(msg)
        role = value
    return key, role


def _to_digest(where: str, entry: str) -> str:
    found = _DIGEST.match(entry)
    if found:
        return found.group(1)
    if len(entry) < 16:
        msg = f"{where}: an API key must be at least 16 characters (or sha256:<64 hex digits>)"
        raise ShipyardError(msg)
    return digest_key(entry)

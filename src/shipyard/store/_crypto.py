"""Encryption at rest: an authenticated envelope (AES-256-GCM) around stored bytes.

An envelope is ``MAGIC | version | key id | nonce | ciphertext+tag``. The key id is a short
digest of the key, so reading with another key names both ids instead of failing blindly; the
header is authenticated with the ciphertext, and a random 96-bit nonce is drawn per envelope.
Bytes without the magic header are plaintext (written before encryption was turned on) and
pass through :func:`open_envelope` unchanged.

The key is 32 bytes, given as urlsafe base64 text in ``SHIPYARD_ENCRYPTION_KEY``; the
``cryptography`` library (``shipyard[crypto]``) is imported only when a key or an envelope is
met.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import ArtifactIntegrityError, EncryptionError

__all__ = [
    "ENCRYPTION_KEY_ENV",
    "MAGIC",
    "EncryptionKey",
    "generate_key_text",
    "is_sealed",
    "key_from_env",
    "open_envelope",
    "resolve_key",
]

#: The environment variable holding the key (urlsafe base64 of 32 bytes).
ENCRYPTION_KEY_ENV = "SHIPYARD_ENCRYPTION_KEY"
#: The first bytes of every envelope (PNG-style: a high byte, a name, line-ending canaries).
MAGIC = b"\x89SYENC\r\n\x1a\n"
_VERSION = 1
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_HEADER_BYTES = len(MAGIC) + 1 + _KEY_ID_BYTES
_BODY_START = _HEADER_BYTES + _NONCE_BYTES
_KEY_BYTES = 32
_INSTALL_HINT = "install shipyard[crypto] (pip install 'shipyard[crypto]')"
_GENERATE_HINT = (
    'generate one with: python -c "import secrets,base64;'
    'print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"'
)


def _aead() -> tuple[Any, type[Exception]]:
    """cryptography's AESGCM class and its authentication error, imported when first needed."""
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:
        msg = f"encryption at rest needs the cryptography library: {_INSTALL_HINT}"
        raise EncryptionError(msg) from exc
    return AESGCM, InvalidTag


@dataclass(frozen=True)
class EncryptionKey:
    """A 32-byte AES-256-GCM key and its public id.

    Attributes:
        key_id: 16 hex digits naming the key in envelopes and messages (not secret).

    Example:
        >>> key = EncryptionKey.from_text(generate_key_text())  # doctest: +SKIP
        >>> key.open(key.seal(b"data"), what="notes.txt")  # doctest: +SKIP
        b'data'
    """

    secret: bytes = field(repr=False)
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.secret) != _KEY_BYTES:
            msg = f"an encryption key is {_KEY_BYTES} bytes, got {len(self.secret)}"
            raise EncryptionError(msg)
        digest = hashlib.sha256(b"shipyard-key-id\x00" + self.secret).digest()
        object.__setattr__(self, "key_id", digest[:_KEY_ID_BYTES].hex())

    @classmethod
    def from_text(cls, text: str, *, source: str = ENCRYPTION_KEY_ENV) -> EncryptionKey:
        """Parse urlsafe base64 text of 32 bytes (the key itself never appears in errors).

        Raises:
            EncryptionError: the text is not base64 of exactly 32 bytes.
        """
        stripped = text.strip()
        try:
            secret = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
        except (binascii.Error, ValueError):
            secret = b""
        if len(secret) != _KEY_BYTES:
            msg = (
                f"{source} is not a valid encryption key: expected urlsafe base64 of "
                f"{_KEY_BYTES} random bytes (44 characters); {_GENERATE_HINT}"
            )
            raise EncryptionError(msg)
        return cls(secret)

    def seal(self, data: bytes) -> bytes:
        """Encrypt ``data`` into an envelope (a fresh random nonce each time).

        Raises:
            EncryptionError: the cryptography library is not installed.
        """
        header = MAGIC + bytes([_VERSION]) + bytes.fromhex(self.key_id)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        aesgcm_class, _ = _aead()
        sealed: bytes = aesgcm_class(self.secret).encrypt(nonce, data, header)
        return header + nonce + sealed

    def open(self, envelope: bytes, *, what: str) -> bytes:
        """Decrypt an envelope written by :meth:`seal` with this key.

        Args:
            envelope: the stored bytes, starting with :data:`MAGIC`.
            what: what is being read, for messages (an artifact path, a file).

        Raises:
            EncryptionError: another key wrote it, or the format version is unknown.
            ArtifactIntegrityError: the envelope fails authentication (changed or truncated).
        """
        found = _header_key_id(envelope, what)
        if found != self.key_id:
            msg = (
                f"{what} was encrypted with key id {found}, but {ENCRYPTION_KEY_ENV} has key "
                f"id {self.key_id}; set {ENCRYPTION_KEY_ENV} to the key that wrote it"
            )
            raise EncryptionError(msg)
        aesgcm_class, invalid_tag = _aead()
        header, nonce = envelope[:_HEADER_BYTES], envelope[_HEADER_BYTES:_BODY_START]
        try:
            plain: bytes = aesgcm_class(self.secret).decrypt(nonce, envelope[_BODY_START:], header)
        except invalid_tag as exc:
            msg = (
                f"{what} failed authentication with key id {self.key_id}: the encrypted "
                "bytes were changed or truncated after they were written; refusing to load it"
            )
            raise ArtifactIntegrityError(msg) from exc
        return plain


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` is an envelope (starts with :data:`MAGIC`), not plaintext."""
    return data.startswith(MAGIC)


def _header_key_id(envelope: bytes, what: str) -> str:
    if len(envelope) < _BODY_START:
        msg = f"{what} starts like an encrypted file but is truncated; refusing to load it"
        raise ArtifactIntegrityError(msg)
    version = envelope[len(MAGIC)]
    if version != _VERSION:
        msg = (
            f"{what} is encrypted in format version {version}, this Shipyard reads version "
            f"{_VERSION}; upgrade Shipyard"
        )
        raise EncryptionError(msg)
    return envelope[len(MAGIC) + 1 : _HEADER_BYTES].hex()


def open_envelope(data: bytes, key: EncryptionKey | None, *, what: str) -> bytes:
    """The plaintext of ``data``: decrypted when it is an envelope, else ``data`` itself.

    Args:
        data: stored bytes, an envelope or plaintext.
        key: the configured key, or ``None``.
        what: what is being read, for messages.

    Raises:
        EncryptionError: ``data`` is encrypted and no key (or another key) is configured,
            or the cryptography library is missing.
        ArtifactIntegrityError: the envelope fails authentication.
    """
    if not is_sealed(data):
        return data
    if key is None:
        found = _header_key_id(data, what)
        _aead()  # a missing library is the first thing to fix
        msg = (
            f"{what} is encrypted (key id {found}) but {ENCRYPTION_KEY_ENV} is not set; set "
            "it to the key that wrote it"
        )
        raise EncryptionError(msg)
    return key.open(data, what=what)


def key_from_env(environ: Mapping[str, str] | None = None) -> EncryptionKey | None:
    """The key in ``SHIPYARD_ENCRYPTION_KEY``, or ``None`` when it is unset or empty.

    Raises:
        EncryptionError: the variable holds no valid key, or cryptography is not installed.
    """
    text = (os.environ if environ is None else environ).get(ENCRYPTION_KEY_ENV, "")
    if not text.strip():
        return None
    key = EncryptionKey.from_text(text)
    _aead()  # fail at start-up, not at the first write
    return key


def resolve_key(key: EncryptionKey | str | None) -> EncryptionKey | None:
    """An explicit key (object or base64 text) beats ``SHIPYARD_ENCRYPTION_KEY``.

    Raises:
        EncryptionError: the key text is invalid, or cryptography is not installed.
    """
    if key is None:
        return key_from_env()
    if isinstance(key, str):
        key = EncryptionKey.from_text(key, source="the encryption_key argument")
    _aead()
    return key


def generate_key_text() -> str:
    """A new random key as urlsafe base64 text, ready for ``SHIPYARD_ENCRYPTION_KEY``."""
    return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode()

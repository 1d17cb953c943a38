"""Personal data (PII) columns: kept out of everything Shipyard writes, and suggested.

A project declares its PII columns (``features.pii`` in ``shipyard.yaml``), each with an
action:

- ``drop``: the column is removed as soon as the data is read (training, batch prediction)
  and never logged by the server;
- ``hash``: the column is replaced by a keyed hash (HMAC-SHA256 with the key in
  ``SHIPYARD_PII_KEY``), so that records can still be joined (labels, erasure requests) without
  the value in clear. The same value gives the same hash under the same key, anywhere.

A PII column is never a model input. :func:`suggest_pii` looks at the columns not declared and
names the ones that look personal (e-mail addresses, phone, card and id numbers, person-name
columns), with the reason, without showing a value.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from shipyard.errors import DataError

__all__ = [
    "PII_INDEX_ARTIFACT",
    "PII_KEY_ENV",
    "PiiAction",
    "PiiKey",
    "PiiPolicy",
    "PiiSuggestion",
    "suggest_pii",
]

PII_KEY_ENV = "SHIPYARD_PII_KEY"
PII_INDEX_ARTIFACT = "pii_index.parquet"
"""The run artifact holding :meth:`PiiPolicy.index` of the training data."""
PiiAction = Literal["drop", "hash"]
HASH_PREFIX = "pii:"
_MIN_KEY_CHARS = 16
_NEW_KEY = 'python -c "import secrets; print(secrets.token_hex(32))"'
_SAMPLE = 1_000
_SHARE = 0.8  # of sampled non-missing values that must match a pattern


class PiiKey:
    """The secret key of the keyed hash (never printed, never stored).

    Args:
        secret: the key's text, at least 16 characters.

    Raises:
        DataError: the key is too short.
    """

    def __init__(self, secret: str) -> None:
        if len(secret) < _MIN_KEY_CHARS:
            msg = (
                f"{PII_KEY_ENV} is too short: a PII hashing key needs at least {_MIN_KEY_CHARS} "
                f"characters (make one with: {_NEW_KEY})"
            )
            raise DataError(msg)
        self._key = secret.encode()

    def __repr__(self) -> str:
        return f"PiiKey(id={self.key_id})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PiiKey | None:
        """The key in ``SHIPYARD_PII_KEY``, or ``None`` when it is unset or empty."""
        secret = (os.environ if environ is None else environ).get(PII_KEY_ENV, "")
        return cls(secret) if secret else None

    @property
    def key_id(self) -> str:
        """A short public id of the key (not the key): tells two keys apart in messages and
        metadata, so a server started with another key than training's is caught."""
        return hmac.new(self._key, b"shipyard-pii-key-id", hashlib.sha256).hexdigest()[:12]

    def hash(self, value: Any) -> str | None:
        """The keyed hash of one value (``None`` stays ``None``): ``pii:`` and 32 hex digits.

        Numbers that are whole (``42``, ``42.0``, ``"42"``) hash alike, and text is stripped,
        so a value read from a CSV file, a JSON request and a database table matches.
        """
        text = _normal_text(value)
        if text is None:
            return None
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
        return HASH_PREFIX + digest[:32]


def _normal_text(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _normal_text(value.item())
    text = str(value).strip()
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".", 1)[0]
    return text


@dataclass(frozen=True)
class PiiPolicy:
    """The declared PII columns and what becomes of each.

    Attributes:
        actions: column -> ``drop`` or ``hash``.
        key: the hashing key; needed when a column is hashed.
    """

    actions: Mapping[str, PiiAction]
    key: PiiKey | None = None

    def __bool__(self) -> bool:
        return bool(self.actions)

    @property
    def hashed(self) -> list[str]:
        """The columns replaced by their keyed hash."""
        return [c for c, a in self.actions.items() if a == "hash"]

    def require_key(self, where: str) -> PiiKey:
        """The key, or a :class:`DataError` saying how to set it."""
        if self.key is None:
            msg = (
                f"{where} hashes the PII column(s) {self.hashed}, which needs a secret key: set "
                f"{PII_KEY_ENV} (the same key wherever these values are hashed, never committed;"
                f" make one with: {_NEW_KEY})"
            )
            raise DataError(msg)
        return self.key

    def protect_frame(self, frame: pd.DataFrame, *, where: str) -> pd.DataFrame:
        """``frame`` with the PII columns dropped or hashed (columns absent are skipped)."""
        present = [c for c in self.actions if c in frame.columns]
        if not present:
            return frame
        hashed = [c for c in present if self.actions[c] == "hash"]
        out = frame.drop(columns=[c for c in present if self.actions[c] == "drop"])
        if hashed:
            key = self.require_key(where)
            out = out.assign(**{c: out[c].map(key.hash).astype(object) for c in hashed})
        return out

    def index(self, frame: pd.DataFrame) -> pd.DataFrame | None:
        """Which subjects the data holds: the distinct keyed hashes of each PII column's
        values (columns ``column``, ``hash``), so that an erasure request can later find the
        model versions trained on a subject without any value kept in clear; ``None`` without
        a key."""
        if self.key is None:
            return None
        key = self.key
        parts = []
        for name in self.actions:
            if name in frame.columns:
                hashes = frame[name].dropna().map(key.hash).dropna().unique()
                parts.append(pd.DataFrame({"column": name, "hash": pd.Series(hashes, dtype=str)}))
        if not parts:
            return pd.DataFrame({"column": pd.Series(dtype=str), "hash": pd.Series(dtype=str)})
        return pd.concat(parts, ignore_index=True)

    def protector(self, where: str) -> Callable[[dict[str, Any]], None]:
        """A function that drops or hashes the PII fields of one record, in place (the key is
        checked now, once)."""
        drop = [c for c, a in self.actions.items() if a == "drop"]
        hashed = self.hashed
        key = self.require_key(where) if hashed else None

        def protect(record: dict[str, Any]) -> None:
            for name in drop:
                record.pop(name, None)
            if key is not None:
                for name in hashed:
                    if name in record:
                        record[name] = key.hash(record[name])

        return protect


@dataclass(frozen=True)
class PiiSuggestion:
    """A column that looks personal and is not declared in ``features.pii``.

    Attributes:
        column: the column.
        reason: why, without any of its values (``most values look like e-mail addresses``).
    """

    column: str
    reason: str


_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("e-mail addresses", re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")),
    ("national id numbers (SSN-style)", re.compile(r"\d{3}-\d{2}-\d{4}")),
    ("IBAN account numbers", re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")),
    (
        "phone numbers",
        re.compile(
            r"(\+|00)\d{1,3}[\s.-]?\(?\d{1,4}\)?([\s.-]?\d{2,4}){2,4}|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}"
        ),
    ),
)
_NAME_COLUMN = re.compile(
    r"(?i)((first|last|full|given|family|middle|maiden|sur|nick|user|customer|client|patient|"
    r"person|employee|contact|passenger|owner)[\s_-]?)?name|surname|forename"
)
_ID_COLUMN = re.compile(r"(?i)ssn|social[\s_-]?security|passport|national[\s_-]?id|tax[\s_-]?id")
_CARD = re.compile(r"(?:\d[ -]?){12,18}\d")


def suggest_pii(
    frame: pd.DataFrame, declared: Mapping[str, Any] | None = None
) -> list[PiiSuggestion]:
    """Columns that look personal, not yet declared, with the reason (no values shown).

    Text columns are sampled (up to 1,000 values) and matched against e-mail, national id,
    IBAN, card (Luhn-checked) and phone patterns: at least 80% must match. A column named like
    a person's name (``name``, ``first_name``, ``customer_name`` ...) holding text, or like an
    id document (``ssn``, ``passport``) is suggested by its name.
    """
    declared = declared or {}
    found: list[PiiSuggestion] = []
    for column in frame.columns:
        name = str(column)
        if name in declared:
            continue
        series = frame[column]
        values = _text_sample(series)
        if _ID_COLUMN.search(name):
            found.append(PiiSuggestion(name, "its name says it holds an id document number"))
            continue
        if values is None:
            continue
        reason = _pattern_reason(values)
        if reason is None and _NAME_COLUMN.fullmatch(name.strip()):
            reason = "its name says it holds people's names"
        if reason is not None:
            found.append(PiiSuggestion(name, reason))
    return found


def _text_sample(series: pd.Series) -> list[str] | None:
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
        return None
    present = series.dropna()
    if present.empty:
        return None
    sample = (
        present.sample(min(_SAMPLE, len(present)), random_state=0)
        if len(present) > _SAMPLE
        else present
    )
    return [str(v).strip() for v in sample.tolist()]


def _pattern_reason(values: list[str]) -> str | None:
    n = len(values)
    cards = sum(1 for v in values if _CARD.fullmatch(v) and _luhn(v))
    if cards >= _SHARE * n:
        return f"{cards} of {n} sampled values look like payment card numbers"
    for what, pattern in _PATTERNS:
        hits = sum(1 for v in values if pattern.fullmatch(v))
        if hits >= _SHARE * n:
            return f"{hits} of {n} sampled values look like {what}"
    return None


def _luhn(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0

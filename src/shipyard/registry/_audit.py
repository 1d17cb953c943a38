"""The audit log: who did what to personal data or to models, and when.

One row per action, appended and never changed: the action (``forget``; alias moves may be
recorded here later), who did it, when (epoch seconds), the model it concerns (``None`` when
it concerns every model) and its details as JSON. Details never hold a personal value in
clear: an erasure records the value's keyed hash.

Example:
    >>> audit = AuditLog(store)  # doctest: +SKIP
    >>> audit.record("forget", "ana", {"column": "customer_id", "value_hash": "pii:..."})
    ... # doctest: +SKIP
    >>> [e.action for e in audit.entries()]  # doctest: +SKIP
    ['forget']
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from shipyard.errors import RegistryError
from shipyard.store import Store, tables

__all__ = ["AuditEntry", "AuditLog"]

_ACTION = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action.

    Attributes:
        id: its number (increasing in the order actions were recorded).
        action: what was done (``forget``).
        actor: who did it.
        created_at: when, epoch seconds.
        model: the model it concerns, ``None`` for every model.
        details: what the action recorded.
    """

    id: int
    action: str
    actor: str
    created_at: float
    model: str | None
    details: Mapping[str, Any] = field(default_factory=dict)


class AuditLog:
    """The store's audit log.

    Args:
        store: the metadata store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self,
        action: str,
        actor: str,
        details: Mapping[str, Any],
        *,
        model: str | None = None,
    ) -> AuditEntry:
        """Append an entry.

        Args:
            action: what was done: lowercase letters, digits, ``_``, ``.`` and ``-``.
            actor: who did it.
            details: what to keep about it (JSON-serialisable).
            model: the model it concerns, ``None`` for every model.

        Raises:
            RegistryError: the action is not a valid name, or the details are not JSON.
        """
        if not _ACTION.match(action):
            msg = (
                f"audit action {action!r} is not a valid name: expected lowercase letters, "
                "digits, '_', '.' or '-', starting with a letter, at most 64 characters"
            )
            raise RegistryError(msg)
        try:
            json.dumps(dict(details), allow_nan=False)
        except (TypeError, ValueError) as exc:
            msg = f"the details of audit action {action!r} are not JSON: {exc}"
            raise RegistryError(msg) from exc
        now, kept = time.time(), dict(details)
        t = tables.audit_log
        insert = sa.insert(t).values(
            action=action, actor=actor, created_at=now, model_name=model, details=kept
        )
        with self._store.begin() as conn:
            key = conn.execute(insert).inserted_primary_key
        assert key is not None  # an INSERT always has one
        return AuditEntry(int(key[0]), action, actor, now, model, kept)

    def entries(
        self, *, action: str | None = None, model: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Recorded entries, newest first.

        Args:
            action: only this action's.
            model: only those concerning this model (entries for every model included).
            limit: at most this many.
        """
        t = tables.audit_log
        query = sa.select(t).order_by(t.c.id.desc())
        if action is not None:
            query = query.where(t.c.action == action)
        if model is not None:
            query = query.where(sa.or_(t.c.model_name == model, t.c.model_name.is_(None)))
        if limit is not None:
            query = query.limit(limit)
        with self._store.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEntry(
                int(r.id), r.action, r.actor, float(r.created_at), r.model_name, dict(r.details)
            )
            for r in rows
        ]

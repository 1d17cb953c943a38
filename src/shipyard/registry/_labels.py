"""Labels that arrive after the predictions: stored by prediction id or by a key column.

A label belongs to a registered model's name (every version's predictions can use it) and is
keyed by ``(key_column, key)``: ``prediction_id`` and the id the server returned, or a column of
the requests (``order_id``) and its value. :meth:`LabelStore.add` writes a batch in one
transaction and reports what it did not add and why: a key twice in the batch (the first label
is kept), a key already labelled (kept as it was, unless ``replace``), and keys no logged
prediction has (added all the same, since a label may come before the log is flushed, but
counted, so that a wrong key column shows at once). :meth:`LabelStore.remove` deletes labels by
key in one transaction (an erasure request's), and :meth:`LabelStore.keys_where` finds the keys
of a key column that a test picks.

Example:
    >>> labels = LabelStore(store)  # doctest: +SKIP
    >>> labels.add("penguins", ["r1-0", "r1-1"], ["Adelie", "Gentoo"])  # doctest: +SKIP
    LabelIngest(n_rows=2, n_added=2, ...)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from shipyard.errors import StoreError
from shipyard.store import Store, tables

__all__ = ["LabelIngest", "LabelStore"]

_EXAMPLES = 5
_CHUNK = 5_000  # keys per IN (...) query: far below every database's parameter limit


@dataclass(frozen=True)
class LabelIngest:
    """What adding a batch of labels did.

    Attributes:
        n_rows: labels in the batch.
        n_added: labels stored (new, or replacing an old one with ``replace``).
        n_duplicates: keys repeated in the batch (their first label was used).
        n_already_labelled: keys that had a label already (kept unless ``replace``).
        n_replaced: of those, how many were replaced.
        n_unknown: keys that no logged prediction has (stored all the same).
        n_missing: rows without a key or a label (not stored; counted by the caller that
            read them).
        duplicates: a few of the repeated keys.
        already_labelled: a few of the keys that had a label.
        unknown: a few of the unknown keys.
    """

    n_rows: int
    n_added: int
    n_duplicates: int
    n_already_labelled: int
    n_replaced: int
    n_unknown: int
    n_missing: int = 0
    duplicates: tuple[str, ...] = field(default=())
    already_labelled: tuple[str, ...] = field(default=())
    unknown: tuple[str, ...] = field(default=())


class LabelStore:
    """Late labels over a :class:`~shipyard.store.Store`.

    Args:
        store: the metadata store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(
        self,
        model: str,
        keys: Sequence[str],
        labels: Sequence[str],
        *,
        key_column: str = "prediction_id",
        source: str | None = None,
        known: Collection[str] | None = None,
        replace: bool = False,
    ) -> LabelIngest:
        """Store a batch of labels in one transaction.

        Args:
            model: the registered model's name.
            keys: each label's key (a prediction id, or a value of ``key_column``).
            labels: the true labels (or values, as text).
            key_column: what the keys are.
            source: where they came from (a file name), kept with each label.
            known: the keys the prediction log has; the others are counted as unknown.
            replace: a key already labelled gets the new label.

        Raises:
            ValueError: ``keys`` and ``labels`` differ in length.
        """
        if len(keys) != len(labels):
            msg = f"{len(keys)} keys but {len(labels)} labels; give one label per key"
            raise ValueError(msg)
        first: dict[str, str] = {}
        duplicates: list[str] = []
        for key, label in zip(keys, labels, strict=True):
            if key in first:
                duplicates.append(key)
            else:
                first[key] = label
        now = time.time()
        with self._store.begin() as conn:
            existing = self._existing(conn, model, key_column, first)
            rows = [
                {
                    "model_name": model,
                    "key_column": key_column,
                    "key": key,
                    "label": label,
                    "received_at": now,
                    "source": source,
                }
                for key, label in first.items()
                if replace or key not in existing
            ]
            if replace and existing:
                t = tables.labels
                for chunk in _chunks(sorted(existing)):
                    conn.execute(
                        sa.delete(t).where(
                            t.c.model_name == model,
                            t.c.key_column == key_column,
                            t.c.key.in_(chunk),
                        )
                    )
            if rows:
                conn.execute(sa.insert(tables.labels), rows)
        unknown = [] if known is None else [k for k in first if k not in known]
        return LabelIngest(
            n_rows=len(keys),
            n_added=len(rows),
            n_duplicates=len(duplicates),
            n_already_labelled=len(existing),
            n_replaced=len(existing) if replace else 0,
            n_unknown=len(unknown),
            duplicates=tuple(dict.fromkeys(duplicates))[:_EXAMPLES],
            already_labelled=tuple(sorted(existing))[:_EXAMPLES],
            unknown=tuple(unknown[:_EXAMPLES]),
        )

    def key_columns(self, model: str) -> list[str]:
        """The key columns ``model``'s labels use (``prediction_id`` first)."""
        return self.key_columns_by_model(model).get(model, [])

    def key_columns_by_model(self, model: str | None = None) -> dict[str, list[str]]:
        """The key columns each model's labels use (``prediction_id`` first); one model's with
        ``model``."""
        t = tables.labels
        query = sa.select(t.c.model_name, t.c.key_column).distinct()
        if model is not None:
            query = query.where(t.c.model_name == model)
        found: dict[str, list[str]] = {}
        with self._store.connect() as conn:
            for name, column in conn.execute(query):
                found.setdefault(str(name), []).append(str(column))
        return {
            name: sorted(sorted(columns), key=lambda n: n != "prediction_id")
            for name, columns in sorted(found.items())
        }

    def keys_where(
        self, key_column: str, test: Callable[[str], bool], *, model: str | None = None
    ) -> dict[str, list[str]]:
        """The keys of ``key_column`` that ``test`` picks, by model (one model's with
        ``model``)."""
        t = tables.labels
        query = sa.select(t.c.model_name, t.c.key).where(t.c.key_column == key_column)
        if model is not None:
            query = query.where(t.c.model_name == model)
        found: dict[str, list[str]] = {}
        with self._store.connect() as conn:
            for name, key in conn.execute(query):
                if test(str(key)):
                    found.setdefault(str(name), []).append(str(key))
        return found

    def remove(
        self, keys: Mapping[tuple[str, str], Collection[str]], *, dry_run: bool = False
    ) -> int:
        """Delete labels in one transaction; how many there were.

        Args:
            keys: ``(model, key_column)`` -> the keys whose labels go.
            dry_run: count them, delete nothing.

        Raises:
            StoreError: the database failed (nothing was removed).
        """
        t = tables.labels
        removed = 0
        try:
            with self._store.begin() as conn:
                for (model, key_column), wanted in keys.items():
                    for chunk in _chunks(sorted(set(wanted))):
                        where = (
                            t.c.model_name == model,
                            t.c.key_column == key_column,
                            t.c.key.in_(chunk),
                        )
                        if dry_run:
                            count = sa.select(sa.func.count()).select_from(t).where(*where)
                            removed += int(conn.execute(count).scalar_one())
                        else:
                            removed += int(conn.execute(sa.delete(t).where(*where)).rowcount)
        except sa.exc.SQLAlchemyError as exc:  # the driver's message, never the keys
            detail = str(getattr(exc, "orig", None) or type(exc).__name__).strip()
            msg = f"removing labels failed, none was removed: {detail}"
            raise StoreError(msg) from exc
        return removed

    def lookup(self, model: str, key_column: str, keys: Iterable[str]) -> dict[str, str]:
        """The labels of those ``keys`` that have one."""
        t = tables.labels
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._store.connect() as conn:
            for chunk in _chunks(wanted):
                rows = conn.execute(
                    sa.select(t.c.key, t.c.label).where(
                        t.c.model_name == model, t.c.key_column == key_column, t.c.key.in_(chunk)
                    )
                )
                found.update({str(key): str(label) for key, label in rows})
        return found

    def _existing(
        self, conn: sa.Connection, model: str, key_column: str, keys: Iterable[str]
    ) -> set[str]:
        t = tables.labels
        existing: set[str] = set()
        for chunk in _chunks(list(keys)):
            existing.update(
                conn.execute(
                    sa.select(t.c.key).where(
                        t.c.model_name == model, t.c.key_column == key_column, t.c.key.in_(chunk)
                    )
                ).scalars()
            )
        return existing


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]

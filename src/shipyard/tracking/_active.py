"""The module-level tracking API over an *active* run: ``shipyard.start_run()``, ``log_metric()``.

For scripts and notebooks: the run started by :func:`start_run` is the active run of the
current context (a ``ContextVar``), and the ``log_*`` functions log to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any

from shipyard.errors import TrackingError
from shipyard.store import Store
from shipyard.tracking._lineage import collect_lineage
from shipyard.tracking._run import Run, Tracker

__all__ = [
    "active_run",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "start_run",
]

_ACTIVE: ContextVar[Run | None] = ContextVar("shipyard_active_run", default=None)


def start_run(name: str | None = None, *, store: Store | None = None, **kwargs: Any) -> Run:
    """Start a run and make it the active run of the current context.

    An entry point for scripts and notebooks: with no ``store`` it uses the active run's
    store, or opens the one the CLI and ``shipyard.open_store()`` find
    (:meth:`Store.from_env`: ``SHIPYARD_STORE_URL``, ``SHIPYARD_HOME``,
    ``SHIPYARD_ARTIFACT_ROOT``; default ``.shipyard/`` in the working directory). Inside
    another active run the new run becomes its child. Lineage (git commit, library
    versions) is collected unless ``lineage`` is given.

    Args:
        name: a display name.
        store: the store to record in.
        **kwargs: ``project``, ``parent_id``, ``tags``, ``lineage``: see
            :meth:`Tracker.start_run`.

    Example:
        >>> import shipyard
        >>> with shipyard.start_run("baseline"):  # doctest: +SKIP
        ...     shipyard.log_params({"C": 1.0})
        ...     shipyard.log_metrics({"accuracy": 0.93})
    """
    parent = _ACTIVE.get()
    closers: list[Callable[[], None]] = []
    if store is None and parent is not None:
        tracker = parent._tracker
    else:
        if store is None:
            store = Store.from_env()
            closers.append(store.close)
        tracker = Tracker(store)
        closers.insert(0, tracker.close)
    kwargs.setdefault("parent_id", parent.id if parent is not None else None)
    if "lineage" not in kwargs:
        kwargs["lineage"] = collect_lineage()
    run = tracker.start_run(name, **kwargs)
    token = _ACTIVE.set(run)
    run._add_end_callback(lambda: _deactivate(run, token, parent))
    for close in closers:
        run._add_end_callback(close)
    return run


def active_run() -> Run | None:
    """The run started by :func:`start_run` in this context and not yet ended."""
    return _ACTIVE.get()


def log_param(key: str, value: object) -> None:
    """Log a param to the active run (see :meth:`Run.log_param`)."""
    _require_active().log_param(key, value)


def log_params(params: Mapping[str, object]) -> None:
    """Log params to the active run (see :meth:`Run.log_params`)."""
    _require_active().log_params(params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric value to the active run (see :meth:`Run.log_metric`)."""
    _require_active().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log metric values to the active run (see :meth:`Run.log_metrics`)."""
    _require_active().log_metrics(metrics, step)


def set_tag(key: str, value: object) -> None:
    """Set a tag on the active run (see :meth:`Run.set_tag`)."""
    _require_active().set_tag(key, value)


def _require_active() -> Run:
    run = _ACTIVE.get()
    if run is None:
        msg = "no active run; use `with shipyard.start_run():` around the logging calls"
        raise TrackingError(msg)
    return run


def _deactivate(run: Run, token: Token[Run | None], parent: Run | None) -> None:
    if _ACTIVE.get() is not run:
        return
    try:
        _ACTIVE.reset(token)
    except ValueError:  # ended from another context: fall back to the parent
        _ACTIVE.set(parent if parent is not None and not parent.ended else None)

"""The top-level Python API's functions that open a store (entry points: they read the env)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.registry import ModelPackage, Registry
from shipyard.spec import ProjectSpec, load_spec
from shipyard.store import Store

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd
    from fastapi import FastAPI

    from shipyard.monitor import DriftReport
    from shipyard.pipeline import ForgetResult, MonitorResult, RunResult
    from shipyard.spec import AlertsSpec, DriftSpec

__all__ = ["drift", "forget", "load_model", "monitor", "open_store", "run", "serve_app"]


def open_store(
    url: str | None = None,
    *,
    root: str | Path | None = None,
    artifact_root: str | None = None,
    encryption_key: str | None = None,
) -> Store:
    """Open the metadata and artifact store, found as every entry point finds it.

    Args:
        url: a SQLAlchemy URL; default ``SHIPYARD_STORE_URL``, else SQLite under ``root``.
        root: local folder for the default store and artifacts; default ``SHIPYARD_HOME``,
            else ``.shipyard``.
        artifact_root: where artifacts go; default ``SHIPYARD_ARTIFACT_ROOT``, else
            ``<root>/artifacts``.
        encryption_key: encrypt new artifacts with this key (urlsafe base64 of 32 bytes);
            default ``SHIPYARD_ENCRYPTION_KEY``, else artifacts are written in clear.
    """
    return Store.from_env(
        url, root=root, artifact_root=artifact_root, encryption_key=encryption_key
    )


def run(spec: ProjectSpec | str | Path, *, store: Store | None = None, **kwargs: Any) -> RunResult:
    """Run a project (a spec or the path of a ``shipyard.yaml``) and register the best model.

    Example:
        >>> result = shipyard.run("shipyard.yaml")  # doctest: +SKIP
        >>> result.model_uri  # doctest: +SKIP
        'models:/penguins@production'
    """
    from shipyard.pipeline import run_project

    project = spec if isinstance(spec, ProjectSpec) else load_spec(spec)
    own = store is None
    active = open_store() if store is None else store
    try:
        return run_project(project, store=active, **kwargs)
    finally:
        if own:
            active.close()


def load_model(uri: str, *, store: Store | None = None) -> ModelPackage:
    """Load a registered model (sha256-verified) by URI, e.g. ``models:/penguins@production``."""
    own = store is None
    active = open_store() if store is None else store
    try:
        return Registry(active).load(uri)
    finally:
        if own:
            active.close()


def serve_app(model: str | ModelPackage, *, store: Store | None = None, **config: Any) -> FastAPI:
    """A FastAPI app serving a model (a URI or a loaded package); run it with any ASGI server."""
    from shipyard.serve import ServeConfig, create_app

    package = load_model(model, store=store) if isinstance(model, str) else model
    return create_app(package, config=ServeConfig(**config))


def drift(
    reference: pd.DataFrame, current: pd.DataFrame, *, options: DriftSpec | None = None
) -> DriftReport:
    """Test every column of ``current`` against ``reference`` (Evidently-compatible choices of
    test unless ``options`` say otherwise).

    Example:
        >>> report = shipyard.drift(train_frame, last_week)  # doctest: +SKIP
        >>> report.drifted, [c.column for c in report.columns if c.drifted]  # doctest: +SKIP
        (False, ['age'])
    """
    from shipyard.monitor import detect_drift

    return detect_drift(reference, current, options=options)


def monitor(
    model_uri: str,
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    predictions: str | Path | None = None,
    options: DriftSpec | None = None,
    alerts: AlertsSpec | None = None,
    store: Store | None = None,
    record: bool = True,
) -> MonitorResult:
    """Check a served model's logged predictions in a window against its reference, and
    record the check (as ``shipyard monitor`` does).

    Args:
        model_uri: the model, e.g. ``models:/penguins@production``.
        since: the window's start (included); ``None`` for the log's first prediction.
        until: the window's end (excluded); ``None`` for the last.
        predictions: the prediction log; default ``<SHIPYARD_HOME>/predictions``.
        options: drift tests and thresholds (a project's ``monitoring.drift``).
        alerts: alert rules and webhook (a project's ``monitoring.alerts``).
        store: the store; default where :func:`open_store` finds it.
        record: record the check in the store's monitoring history.
    """
    from shipyard.pipeline import check_model
    from shipyard.store import store_location

    own = store is None
    active = open_store() if store is None else store
    log = predictions if predictions is not None else store_location(None)[1] / "predictions"
    try:
        return check_model(
            model_uri,
            store=active,
            predictions=log,
            since=since,
            until=until,
            options=options,
            record=record,
            alerts=alerts,
        )
    finally:
        if own:
            active.close()


def forget(
    column: str,
    value: Any,
    *,
    model: str | None = None,
    predictions: str | Path | None = None,
    dry_run: bool = False,
    user: str = "shipyard",
    store: Store | None = None,
) -> ForgetResult:
    """Erase a subject's logged predictions and labels, list the model versions trained on
    them, and record it in the audit log (as ``shipyard forget`` does; needs
    ``SHIPYARD_PII_KEY``).

    Args:
        column: the request field naming the subject, e.g. ``customer_id``.
        value: its value (never written anywhere: the audit log keeps its keyed hash).
        model: only this model; ``None`` for every model.
        predictions: the prediction log; default ``<SHIPYARD_HOME>/predictions`` when that
            folder exists.
        dry_run: count what would go; change and record nothing.
        user: who asks, for the audit log.
        store: the store; default where :func:`open_store` finds it.

    Example:
        >>> result = shipyard.forget("customer_id", "C-1042")  # doctest: +SKIP
        >>> result.predictions_removed, [v.uri for v in result.retrain]  # doctest: +SKIP
        (3, ['models:/churn/2'])
    """
    from shipyard.pipeline import forget as erase
    from shipyard.store import store_location

    own = store is None
    active = open_store() if store is None else store
    log: str | Path | None = predictions
    if log is None:
        default = store_location(None)[1] / "predictions"
        log = default if default.is_dir() else None
    try:
        return erase(
            column, value, store=active, predictions=log, model=model, dry_run=dry_run, user=user
        )
    finally:
        if own:
            active.close()

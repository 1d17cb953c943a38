"""The top-level Python API's functions that open a store (entry points: they read the env)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.registry import ModelPackage, Registry
from shipyard.spec import ProjectSpec, load_spec
from shipyard.store import Store

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shipyard.pipeline import RunResult

__all__ = ["load_model", "open_store", "run", "serve_app"]


def open_store(
    url: str | None = None, *, root: str | Path | None = None, artifact_root: str | None = None
) -> Store:
    """Open the metadata and artifact store, found as every entry point finds it.

    Args:
        url: a SQLAlchemy URL; default ``SHIPYARD_STORE_URL``, else SQLite under ``root``.
        root: local folder for the default store and artifacts; default ``SHIPYARD_HOME``,
            else ``.shipyard``.
        artifact_root: where artifacts go; default ``SHIPYARD_ARTIFACT_ROOT``, else
            ``<root>/artifacts``.
    """
    return Store.from_env(url, root=root, artifact_root=artifact_root)


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

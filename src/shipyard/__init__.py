"""Shipyard: from a dataset to a validated, tracked, registered, served model.

The public Python API (documented in ``docs/python-api.md``)::

    import shipyard

    spec = shipyard.load_spec("shipyard.yaml")
    result = shipyard.run(spec)                    # train, evaluate, register
    model = shipyard.load_model(result.model_uri)  # sha256-verified package
    model.predict(frame)

    with shipyard.start_run("experiment") as run:  # tracking outside pipelines
        shipyard.log_params({"alpha": 0.1})
        shipyard.log_metrics({"loss": 0.25}, step=1)

    app = shipyard.serve_app("models:/penguins@production")  # an ASGI app
    check = shipyard.monitor("models:/penguins@production", since="2024-05-01")  # drift
    shipyard.forget("customer_id", "C-1042")       # right to erasure (SHIPYARD_PII_KEY)

Names are imported on first use, so ``import shipyard`` stays light (the server does not
pull in the training stack).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ModelPackage",
    "ProjectSpec",
    "RunResult",
    "ShipyardError",
    "__version__",
    "active_run",
    "drift",
    "forget",
    "load_model",
    "load_spec",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "monitor",
    "open_store",
    "run",
    "serve_app",
    "set_tag",
    "start_run",
]

_LAZY = {
    "ModelPackage": "shipyard.registry",
    "ProjectSpec": "shipyard.spec",
    "RunResult": "shipyard.pipeline",
    "ShipyardError": "shipyard.errors",
    "active_run": "shipyard.tracking",
    "drift": "shipyard._api",
    "forget": "shipyard._api",
    "load_model": "shipyard._api",
    "load_spec": "shipyard.spec",
    "log_metric": "shipyard.tracking",
    "log_metrics": "shipyard.tracking",
    "log_param": "shipyard.tracking",
    "log_params": "shipyard.tracking",
    "monitor": "shipyard._api",
    "open_store": "shipyard._api",
    "run": "shipyard._api",
    "serve_app": "shipyard._api",
    "set_tag": "shipyard.tracking",
    "start_run": "shipyard.tracking",
}

if TYPE_CHECKING:
    from shipyard._api import drift, forget, load_model, monitor, open_store, run, serve_app
    from shipyard.errors import ShipyardError
    from shipyard.pipeline import RunResult
    from shipyard.registry import ModelPackage
    from shipyard.spec import ProjectSpec, load_spec
    from shipyard.tracking import (
        active_run,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        set_tag,
        start_run,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'shipyard' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

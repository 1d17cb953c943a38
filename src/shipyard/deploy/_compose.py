"""A docker compose file: the model server and PostgreSQL 15 as its store."""

from __future__ import annotations

from typing import Any

from shipyard.deploy._spec import PREDICTION_LOG_ENV, DeploySpec, PredictionLog

__all__ = ["compose"]

_DB = "shipyard"
_PASSWORD = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in the environment or an .env file}"


def compose(spec: DeploySpec) -> dict[str, Any]:
    """The compose file as a dict.

    The password comes from the environment (or an ``.env`` file beside the compose file),
    never from the generated file; the server's store URL is built from it. Artifacts live in
    ``./artifacts``, bind-mounted read-only, so ``shipyard run`` on the host (with the same
    store URL on ``127.0.0.1`` and ``SHIPYARD_ARTIFACT_ROOT=./artifacts``) registers models the
    server finds; it restarts until the model is registered.
    """
    url = f"postgresql+psycopg://{_DB}:${{POSTGRES_PASSWORD}}@postgres:5432/{_DB}"
    postgres = {
        "image": "postgres:15",
        "restart": "unless-stopped",
        "environment": {"POSTGRES_USER": _DB, "POSTGRES_DB": _DB, "POSTGRES_PASSWORD": _PASSWORD},
        "ports": ["127.0.0.1:5432:5432"],
        "volumes": ["pgdata:/var/lib/postgresql/data"],
        "healthcheck": {
            "test": ["CMD-SHELL", f"pg_isready -U {_DB} -d {_DB}"],
            "interval": "5s",
            "timeout": "5s",
            "retries": 10,
        },
    }
    log_env = {
        PredictionLog.store: {PREDICTION_LOG_ENV: url},  # a table beside the registry
        PredictionLog.folder: {},  # SHIPYARD_HOME/predictions, on the volume below
        PredictionLog.off: {PREDICTION_LOG_ENV: "off"},
    }[spec.prediction_log]
    server = {
        "build": {"context": "."},
        "image": spec.image_ref,
        "restart": "unless-stopped",
        "command": spec.serve_args,
        "ports": [f"{spec.port}:{spec.port}"],
        "environment": {
            spec.store_url_env: url,
            "SHIPYARD_ARTIFACT_ROOT": "/var/lib/shipyard/artifacts",
            **log_env,
            **(
                {"SHIPYARD_API_KEYS": "${SHIPYARD_API_KEYS:?set SHIPYARD_API_KEYS}"}
                if spec.api_keys
                else {}
            ),
        },
        "volumes": [
            "./artifacts:/var/lib/shipyard/artifacts:ro",
            "predictions:/var/lib/shipyard/predictions",
        ],
        "depends_on": {"postgres": {"condition": "service_healthy"}},
        "healthcheck": {
            "test": [
                "CMD",
                "python",
                "-c",
                f"import urllib.request; urllib.request.urlopen("
                f"'http://127.0.0.1:{spec.port}/ready', timeout=4)",
            ],
            "interval": "15s",
            "timeout": "5s",
            "retries": 3,
            "start_period": "60s",
        },
    }
    return {
        "name": spec.app,
        "services": {spec.app: server, "postgres": postgres},
        "volumes": {"pgdata": {}, "predictions": {}},
    }

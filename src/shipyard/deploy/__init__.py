"""Deployment artifacts for a registered model: a Dockerfile, Kubernetes manifests, a docker
compose file with PostgreSQL, a Grafana dashboard and a CI workflow, generated from one
:class:`DeploySpec` (pure generation; :func:`write_files` writes them atomically).

Example:
    >>> from shipyard.deploy import DeploySpec, Target, render
    >>> spec = DeploySpec(model_uri="models:/penguins@production", model_name="penguins",
    ...                   model_version=1, shipyard_version="0.1.0")
    >>> sorted(render(spec, Target.compose))[:2]
    ['.dockerignore', '.github/workflows/shipyard.yml']
"""

from shipyard.deploy._build import spec_for
from shipyard.deploy._docker import UID
from shipyard.deploy._grafana import dashboard
from shipyard.deploy._k8s import STORE_URL_KEY, manifests
from shipyard.deploy._render import COMPOSE_FILE, DASHBOARD_FILE, WORKFLOW_FILE, render
from shipyard.deploy._spec import (
    PREDICTION_LOG_ENV,
    DeploySpec,
    PredictionLog,
    Resources,
    Target,
    dns_name,
)
from shipyard.deploy._write import WrittenFile, write_files

__all__ = [
    "COMPOSE_FILE",
    "DASHBOARD_FILE",
    "PREDICTION_LOG_ENV",
    "STORE_URL_KEY",
    "UID",
    "WORKFLOW_FILE",
    "DeploySpec",
    "PredictionLog",
    "Resources",
    "Target",
    "WrittenFile",
    "dashboard",
    "dns_name",
    "manifests",
    "render",
    "spec_for",
    "write_files",
]

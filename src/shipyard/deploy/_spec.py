"""What ``shipyard deploy`` generates from: one typed, validated :class:`DeploySpec`."""

from __future__ import annotations

import enum
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["PREDICTION_LOG_ENV", "DeploySpec", "PredictionLog", "Resources", "Target", "dns_name"]

PREDICTION_LOG_ENV = "SHIPYARD_PREDICTION_LOG"
"""The environment variable ``shipyard serve --prediction-log`` is read from."""

_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"


class Target(enum.StrEnum):
    """Where the model runs: a plain container, Kubernetes, or docker compose with PostgreSQL."""

    docker = "docker"
    k8s = "k8s"
    compose = "compose"


class PredictionLog(enum.StrEnum):
    """Where the deployed server logs its predictions (what ``shipyard monitor`` reads).

    ``store``: a table in the metadata store's database (the URL from the same Secret or
    environment variable as the store's): every replica writes there, and it outlives pods.
    ``folder``: Parquet files under ``SHIPYARD_HOME/predictions`` in the container (a volume in
    compose; an ``emptyDir`` in Kubernetes, lost with the pod). ``off``: no log.
    """

    store = "store"
    folder = "folder"
    off = "off"


class Resources(BaseModel):
    """The server container's CPU and memory requests and limits (Kubernetes quantities)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_request: str = "500m"
    cpu_limit: str = "1"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"

    @field_validator("*")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if not re.fullmatch(_QUANTITY, value):
            msg = f"{value!r} is not a Kubernetes quantity; expected e.g. 500m, 2, 512Mi, 1Gi"
            raise ValueError(msg)
        return value


def dns_name(text: str) -> str:
    """``text`` as a Kubernetes object name (RFC 1123 label: lower case, digits, ``-``).

    Example:
        >>> dns_name("Churn_Model.v2")
        'churn-model-v2'
    """
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].rstrip("-") or "model"


class DeploySpec(BaseModel):
    """Everything the deployment files depend on; the generators read nothing else.

    The server fetches its model by URI at start (``shipyard serve MODEL_URI`` against the store
    that ``store_url_env`` names, read from the environment at run time): no model file and no
    secret is baked into the image. Serving an alias (``models:/NAME@production``) follows it:
    the server switches version when the alias moves.

    Args:
        model_uri: the URI the server serves, as given.
        model_name: the registered model's name.
        model_version: the version the URI resolved to when the files were generated.
        shipyard_version: the Shipyard release the image installs (``shipyard==VERSION``).
        wheel: a wheel's file name in the output folder, installed instead of the release.
        image: the container image's name (with its registry, e.g. ``ghcr.io/org/penguins``).
        tag: the image's tag.
        port: the port the server listens on in the container.
        workers: server processes per container (scale with replicas rather than workers).
        replicas: the Deployment's replicas (the HPA moves them between min and max).
        min_replicas: the HorizontalPodAutoscaler's floor (the PodDisruptionBudget keeps
            all but one of them up).
        max_replicas: the HorizontalPodAutoscaler's ceiling.
        target_cpu_percent: the average CPU utilisation the HPA aims at.
        resources: the container's requests and limits.
        store_url_env: the environment variable holding the store URL.
        secret_name: the Kubernetes Secret holding the store URL (and API keys); referenced
            by name, never written.
        api_keys: the server requires API keys (``SHIPYARD_API_KEYS`` from the Secret); the
            ServiceMonitor then presents one to scrape ``/metrics``.
        prediction_log: where the server logs its predictions (see :class:`PredictionLog`).
        extras: the Shipyard extras the image installs (``postgres`` for a PostgreSQL store).
        base_image: the Python base image, pinned by tag.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_uri: str
    model_name: str
    model_version: int = Field(ge=1)
    shipyard_version: str
    wheel: str | None = None
    image: str = ""
    tag: str = ""
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    replicas: int = Field(2, ge=1)
    min_replicas: int = Field(2, ge=1)
    max_replicas: int = Field(10, ge=1)
    target_cpu_percent: int = Field(70, ge=1, le=100)
    resources: Resources = Resources()
    store_url_env: str = Field("SHIPYARD_STORE_URL", pattern=r"^[A-Z_][A-Z0-9_]*$")
    secret_name: str = ""
    api_keys: bool = False
    prediction_log: PredictionLog = PredictionLog.store
    extras: tuple[str, ...] = ("postgres",)
    base_image: str = Field("python:3.11-slim", pattern=r"^[^\s@]+:[^\s@]+$")

    @model_validator(mode="after")
    def _check(self) -> DeploySpec:
        if self.min_replicas > self.max_replicas:
            msg = f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}"
            raise ValueError(msg)
        if self.wheel is not None and ("/" in self.wheel or not self.wheel.endswith(".whl")):
            msg = f"wheel must be a .whl file name in the output folder, not {self.wheel!r}"
            raise ValueError(msg)
        return self

    @property
    def app(self) -> str:
        """The name of every Kubernetes object and compose service: ``shipyard-<model>``."""
        return dns_name(f"shipyard-{self.model_name}")

    @property
    def image_ref(self) -> str:
        """``image:tag`` (defaults: ``shipyard-<model>:v<version>``)."""
        return f"{self.image or self.app}:{self.tag or f'v{self.model_version}'}"

    @property
    def secret(self) -> str:
        """The Secret's name (default ``<app>-secrets``)."""
        return self.secret_name or f"{self.app}-secrets"

    @property
    def serve_args(self) -> list[str]:
        """``shipyard serve``'s arguments in the container."""
        return [
            self.model_uri,
            "--host",
            "0.0.0.0",  # a container listens on all its interfaces
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]

    @property
    def requirement(self) -> str:
        """What ``pip install`` installs in the image."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        if self.wheel is not None:
            return f"/tmp/{self.wheel}{extras}"
        return f"shipyard{extras}=={self.shipyard_version}"

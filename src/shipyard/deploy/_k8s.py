"""Kubernetes manifests: Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget and
a Prometheus Operator ServiceMonitor, as plain dicts (dumped as YAML by the caller)."""

from __future__ import annotations

from typing import Any

from shipyard.deploy._docker import UID
from shipyard.deploy._spec import PREDICTION_LOG_ENV, DeploySpec, PredictionLog

__all__ = ["STORE_URL_KEY", "manifests"]

STORE_URL_KEY = "store-url"
"""The Secret's key holding the store URL."""
_ARTIFACT_ROOT_KEY = "artifact-root"
_API_KEYS_KEY = "api-keys"
_METRICS_KEY_KEY = "metrics-api-key"
_PORT_NAME = "http"


def manifests(spec: DeploySpec) -> dict[str, dict[str, Any]]:
    """Each manifest by file name (``deployment.yaml`` ...)."""
    return {
        "deployment.yaml": _deployment(spec),
        "service.yaml": _service(spec),
        "hpa.yaml": _hpa(spec),
        "pdb.yaml": _pdb(spec),
        "servicemonitor.yaml": _service_monitor(spec),
    }


def _metadata(spec: DeploySpec) -> dict[str, Any]:
    return {"name": spec.app, "labels": _labels(spec)}


def _labels(spec: DeploySpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": spec.app,
        "app.kubernetes.io/part-of": "shipyard",
        "app.kubernetes.io/managed-by": "shipyard-deploy",
    }


def _selector(spec: DeploySpec) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/name": spec.app}}


def _secret_env(spec: DeploySpec, name: str, key: str, *, optional: bool) -> dict[str, Any]:
    ref = {"name": spec.secret, "key": key, "optional": optional}
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _env(spec: DeploySpec) -> list[dict[str, Any]]:
    env = [
        _secret_env(spec, spec.store_url_env, STORE_URL_KEY, optional=False),
        _secret_env(spec, "SHIPYARD_ARTIFACT_ROOT", _ARTIFACT_ROOT_KEY, optional=True),
    ]
    if spec.prediction_log is PredictionLog.store:  # a table in the store's database
        env.append(_secret_env(spec, PREDICTION_LOG_ENV, STORE_URL_KEY, optional=False))
    elif spec.prediction_log is PredictionLog.off:
        env.append({"name": PREDICTION_LOG_ENV, "value": "off"})
    if spec.api_keys:
        env.append(_secret_env(spec, "SHIPYARD_API_KEYS", _API_KEYS_KEY, optional=False))
    return env


def _probe(path: str, **timing: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": _PORT_NAME}, "timeoutSeconds": 5, **timing}


def _container(spec: DeploySpec) -> dict[str, Any]:
    res = spec.resources
    return {
        "name": "server",
        "image": spec.image_ref,
        "imagePullPolicy": "IfNotPresent",
        "args": spec.serve_args,
        "ports": [{"name": _PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
        "env": _env(spec),
        "resources": {
            "requests": {"cpu": res.cpu_request, "memory": res.memory_request},
            "limits": {"cpu": res.cpu_limit, "memory": res.memory_limit},
        },
        # /health: 200 while the process runs; /ready: 200 once the model is loaded and warm
        "startupProbe": _probe("/health", periodSeconds=5, failureThreshold=60),
        "livenessProbe": _probe("/health", periodSeconds=10, failureThreshold=3),
        "readinessProbe": _probe("/ready", periodSeconds=5, failureThreshold=2),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "shipyard-home", "mountPath": "/var/lib/shipyard"},
        ],
    }


def _deployment(spec: DeploySpec) -> dict[str, Any]:
    pod = {
        "metadata": {"labels": _labels(spec)},
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 45,  # > serve's --graceful-timeout (30 s)
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": UID,
                "runAsGroup": UID,
                "fsGroup": UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [_container(spec)],
            # a read-only root: the prediction log (SHIPYARD_HOME) and temp files need these
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                {"name": "shipyard-home", "emptyDir": {}},
            ],
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec),
        "spec": {
            "replicas": max(spec.replicas, spec.min_replicas),
            "selector": _selector(spec),
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": pod,
        },
    }


def _service(spec: DeploySpec) -> dict[str, Any]:
    port = {"name": _PORT_NAME, "port": spec.port, "targetPort": _PORT_NAME, "protocol": "TCP"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec),
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": spec.app},
            "ports": [port],
        },
    }


def _hpa(spec: DeploySpec) -> dict[str, Any]:
    target = {"type": "Utilization", "averageUtilization": spec.target_cpu_percent}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(spec),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.app},
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
        },
    }


def _pdb(spec: DeploySpec) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(spec),
        "spec": {"maxUnavailable": 1, "selector": _selector(spec)},
    }


def _service_monitor(spec: DeploySpec) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"port": _PORT_NAME, "path": "/metrics", "interval": "15s"}
    if spec.api_keys:  # /metrics needs a key (role read is enough) when the server has keys
        secret = {"name": spec.secret, "key": _METRICS_KEY_KEY}
        endpoint["authorization"] = {"type": "Bearer", "credentials": secret}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _metadata(spec),
        "spec": {"selector": _selector(spec), "endpoints": [endpoint]},
    }

"""A Grafana dashboard for the server's Prometheus metrics (names from ``serve._metrics``)."""

from __future__ import annotations

from typing import Any

from shipyard.deploy._spec import DeploySpec

__all__ = ["dashboard"]

_DS = {"type": "prometheus", "uid": "${datasource}"}
_SEL = 'job=~"$job"'
_RATE = "[$__rate_interval]"


def _panel(
    n: int, title: str, unit: str, targets: list[tuple[str, str]], description: str
) -> dict[str, Any]:
    return {
        "id": n,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _DS,
        "gridPos": {"h": 8, "w": 12, "x": 12 * ((n - 1) % 2), "y": 8 * ((n - 1) // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": _DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _quantile(q: float) -> str:
    return (
        f"histogram_quantile({q}, sum by (le, route) "
        f"(rate(shipyard_http_request_duration_seconds_bucket{{{_SEL}}}{_RATE})))"
    )


def _panels() -> list[dict[str, Any]]:
    requests = f"shipyard_http_requests_total{{{_SEL}}}"
    batch = f"shipyard_batch_rows_bucket{{{_SEL}}}"
    return [
        _panel(
            1,
            "Request rate",
            "reqps",
            [(f"sum by (route) (rate({requests}{_RATE}))", "{{route}}")],
            "HTTP requests per second by route.",
        ),
        _panel(
            2,
            "Latency p50 / p99",
            "s",
            [(_quantile(0.5), "p50 {{route}}"), (_quantile(0.99), "p99 {{route}}")],
            "Request latency quantiles by route.",
        ),
        _panel(
            3,
            "Error rate",
            "percentunit",
            [
                (
                    f'sum(rate(shipyard_http_requests_total{{{_SEL},status=~"5.."}}{_RATE})) / '
                    f"clamp_min(sum(rate({requests}{_RATE})), 1e-9)",
                    "5xx share",
                ),
                (
                    f"sum by (reason) (rate(shipyard_requests_refused_total{{{_SEL}}}{_RATE}))",
                    "refused: {{reason}}",
                ),
            ],
            "Share of requests answered with a 5xx, and refusals per second by reason.",
        ),
        _panel(
            4,
            "Queue depth",
            "short",
            [(f"sum(shipyard_queue_rows{{{_SEL}}})", "rows waiting")],
            "Rows admitted and waiting for the model.",
        ),
        _panel(
            5,
            "Batch size",
            "short",
            [
                (f"histogram_quantile(0.5, sum by (le) (rate({batch}{_RATE})))", "p50 rows"),
                (f"histogram_quantile(0.99, sum by (le) (rate({batch}{_RATE})))", "p99 rows"),
            ],
            "Rows per model call (micro-batching).",
        ),
        _panel(
            6,
            "Canary / shadow split",
            "short",
            [
                (
                    "sum by (role, version) "
                    f"(rate(shipyard_routed_records_total{{{_SEL}}}{_RATE}))",
                    "{{role}} v{{version}}",
                ),
                (
                    f"sum by (outcome) (rate(shipyard_shadow_records_total{{{_SEL}}}{_RATE}))",
                    "shadow {{outcome}}",
                ),
            ],
            "Records answered per second by role (primary, canary), and the shadow's outcomes.",
        ),
    ]


def _variables() -> list[dict[str, Any]]:
    datasource: dict[str, Any] = {"name": "datasource", "label": "Data source"}
    datasource |= {"type": "datasource", "query": "prometheus", "current": {}, "hide": 0}
    job = {
        "name": "job",
        "label": "Job",
        "type": "query",
        "datasource": _DS,
        "query": {"query": "label_values(shipyard_model_info, job)", "refId": "job"},
        "definition": "label_values(shipyard_model_info, job)",
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {},
        "refresh": 2,
        "hide": 0,
    }
    return [datasource, job]


def dashboard(spec: DeploySpec) -> dict[str, Any]:
    """The dashboard's JSON model (import it in Grafana, or provision it)."""
    return {
        "title": f"Shipyard: {spec.model_name}",
        "uid": spec.app[:40],
        "tags": ["shipyard"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": _variables()},
        "panels": _panels(),
        "annotations": {"list": []},
    }

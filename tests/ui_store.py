"""A store for the web UI's tests, filled through the public APIs (tracking, registry).

``fill(store)`` records 60 top-level ``churn`` runs (params, metrics, tags, a few with metric
histories), one failed and one killed, a ``penguins`` search run with 5 trials, a run with
artifacts (an HTML report, a validation report, a file in a folder), and the model
``penguins`` with 3 versions, aliases moved with reasons, and gate decisions.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
from sklearn.dummy import DummyClassifier

from shipyard.data import ColumnSchema, Signature
from shipyard.registry import ModelPackage, Registry
from shipyard.store import Store
from shipyard.tracking import Lineage, Tracker

N_CHURN = 60
MODELS = ("lightgbm", "logistic_regression", "random_forest")
TEAMS = ("risk", "growth")
SIG = Signature(
    inputs=(ColumnSchema(name="x", kind="number", dtype="float64", nullable=False),),
    classes=("a", "b"),
)
REPORT_HTML = b"<!doctype html><title>report</title><h1 id='card'>Model card</h1>"
VALIDATION = {
    "ok": False,
    "n_rows": 344,
    "n_columns": 8,
    "n_errors": 1,
    "n_warnings": 1,
    "results": [
        {
            "check": "not_null",
            "column": "sex",
            "severity": "warning",
            "n_failed": 11,
            "n_checked": 344,
            "examples": [4],
            "example_values": [None],
            "message": "11 rows of sex are missing <b>",
        },
        {
            "check": "range",
            "column": "body_mass_g",
            "severity": "error",
            "n_failed": 2,
            "n_checked": 344,
            "examples": [1, 2],
            "example_values": [1, 2],
            "message": "2 values below 1000",
        },
        {
            "check": "unique",
            "column": "id",
            "severity": "error",
            "n_failed": 0,
            "n_checked": 344,
            "examples": [],
            "example_values": [],
            "message": "ok",
        },
    ],
}


@dataclass
class Filled:
    """What :func:`fill` recorded, for the tests to look up."""

    churn: list[str] = field(default_factory=list)  # run ids, oldest first
    search: str = ""
    trials: list[str] = field(default_factory=list)
    reported: str = ""
    failed: str = ""
    killed: str = ""
    no_accuracy: str = ""


def package(accuracy: float) -> ModelPackage:
    """A tiny fitted model package with ``accuracy`` as its holdout metric."""
    model = DummyClassifier(strategy="most_frequent").fit(
        pd.DataFrame({"x": [0.0, 1.0]}), ["a", "b"]
    )
    metadata = {
        "metrics": {"accuracy": accuracy, "f1_macro": accuracy - 0.05},
        "lineage": {"primary_metric": "accuracy"},
    }
    return ModelPackage(model, SIG, "binary", metadata)


def fill(store: Store) -> Filled:
    """Record the runs and the model described in the module docstring."""
    out = Filled()
    lineage = Lineage(
        spec_hash="spec0123",
        dataset_fingerprint="data4567",
        git_commit="abc1234",
        package_versions={"numpy": "2.0.0", "scikit-learn": "1.5.0"},
    )
    with Tracker(store) as tracker:
        for i in range(N_CHURN):
            with tracker.start_run(f"churn-{i:03d}", project="churn", lineage=lineage) as run:
                run.log_params({"model": MODELS[i % 3], "C": i % 4, "metric": "accuracy"})
                run.set_tags({"team": TEAMS[i % 2]})
                if i != 7:  # one run never logged accuracy
                    run.log_metric("accuracy", 0.5 + i / 200)
                run.log_metric("log_loss", 1.0 - i / 100)
                if i % 10 == 0:
                    for step in range(5):
                        run.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            out.churn.append(run.id)
        out.no_accuracy = out.churn[7]
        failed = tracker.start_run("broken", project="churn")
        failed.log_metric("accuracy", 0.1)
        failed.end("failed", error="ValueError: bad <input>")
        out.failed = failed.id
        killed = tracker.start_run("stopped", project="churn")
        killed.end("killed")
        out.killed = killed.id
        with tracker.start_run("search", project="penguins", lineage=lineage) as parent:
            parent.log_params({"metric": "f1_macro"})
            for t in range(5):
                with tracker.start_run(f"trial-{t}", project="penguins", parent_id=parent.id) as c:
                    c.log_params({"model": MODELS[t % 3]})
                    c.log_metric("f1_macro", 0.8 + t / 100)
                out.trials.append(c.id)
            parent.log_metric("f1_macro", 0.84)
            parent.set_tags({"model_version": "penguins/1"})
            parent.log_artifact("report.html", REPORT_HTML)
            parent.log_artifact("validation.json", json.dumps(VALIDATION).encode())
            parent.log_artifact("plots/fold scores.json", b'{"folds": [0.8, 0.9]}')
            evaluation = {
                "metrics": {"f1_macro": 0.84},
                "labels": ["Adelie", "Gentoo"],
                "confusion_matrix": [[31, 2], [1, 27]],
            }
            parent.log_artifact("evaluation.json", json.dumps(evaluation).encode())
        out.search = out.reported = parent.id
    registry = Registry(store)
    for accuracy in (0.84, 0.86, 0.83):
        registry.register("penguins", package(accuracy), run_id=out.search, created_by="ana")
    registry.promote("penguins", 1, "production", moved_by="ana", reason="first model")
    registry.promote("penguins", 2, "production", moved_by="bob", reason="better on fresh data")
    registry.promote("penguins", 3, "staging", moved_by="bob", reason="try it")
    evidence = {
        "method": "paired_bootstrap",
        "metric": "accuracy",
        "challenger": 0.86,
        "champion": {"version": 1, "score": 0.84},
        "bootstrap": {"p_better": 0.97, "confidence": 0.95, "samples": 1000},
    }
    registry.record_gate(
        "penguins",
        2,
        alias="production",
        promoted=True,
        reason="beats v1 by 0.02 (p=0.97)",
        evidence=evidence,
        decided_by="ci",
    )
    registry.record_gate(
        "penguins",
        3,
        alias="production",
        promoted=False,
        reason="worse than v2",
        evidence={"metric": "accuracy", "challenger": 0.83},
        decided_by="ci",
    )
    return out


@dataclass
class RunningUi:
    """A ``shipyard ui`` subprocess: its port and (once it has stopped) all it printed."""

    process: subprocess.Popen[str]
    port: int
    lines: list[str]

    @property
    def output(self) -> str:
        return "".join(self.lines)


@contextmanager
def running_ui(home: Path, *args: str) -> Iterator[RunningUi]:
    """``shipyard ui --port 0 ARGS`` in a subprocess whose output a thread keeps reading
    (a full pipe would stall the server); stopped with SIGTERM at the end."""
    import threading

    env = {**os.environ, "SHIPYARD_HOME": str(home / ".shipyard")}
    env.pop("SHIPYARD_API_KEYS", None)
    command = [sys.executable, "-m", "shipyard", "ui", "--port", "0", *args]
    process = subprocess.Popen(
        command, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    stream = process.stdout
    lines = [stream.readline()]
    reader = threading.Thread(target=lambda: lines.extend(stream), daemon=True)
    reader.start()
    try:
        found = re.search(r"Shipyard UI on https?://127\.0\.0\.1:(\d+)", lines[0])
        if found is None:
            process.wait(timeout=30)
            reader.join(timeout=5)
            raise AssertionError("".join(lines))
        yield RunningUi(process, int(found.group(1)), lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        reader.join(timeout=5)


def wait_healthy(client: httpx.Client, timeout: float = 20.0) -> None:
    """Wait until the UI answers ``/health``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/health").text == "ok":
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the UI did not start"
        time.sleep(0.1)


# --- monitoring -------------------------------------------------------------------------

MONITOR_DAY = 86_400.0
MONITOR_START = 1_780_000_000.0  # the first check's window starts here (2026-05-28, UTC)


@dataclass
class Monitored:
    """What :func:`fill_monitoring` recorded: penguins v2's checks (oldest first) and the
    incidents (newest first: the open one, then the resolved one)."""

    checks: list[str] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)


def fill_monitoring(store: Store) -> Monitored:
    """Six daily checks of ``penguins`` v2 (the model :func:`fill` registers), recorded as
    ``shipyard monitor`` records them: real drift tests of three inputs and two outputs
    (drifting on days 3, 4 and 6), the predicted class shares (from day 2: the first check
    predates them), estimated and realised accuracy, and the alert rule
    ``drift_share > 0.3`` opening an incident on day 3 (delivered), resolving it on day 5, and
    opening another on day 6 whose notice could not be delivered."""
    import numpy as np

    from shipyard.monitor import (
        alert_signals,
        class_share_summary,
        compare_performance,
        detect_drift,
    )
    from shipyard.pipeline import AlertChannels, apply_alerts
    from shipyard.registry import MonitorHistory
    from shipyard.spec import AlertRuleSpec, AlertsSpec

    rng = np.random.default_rng(7)
    n = 300
    reference = pd.DataFrame(
        {
            "bill_length_mm": rng.normal(44, 5, n),
            "body_mass_g": rng.normal(4200, 800, n),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n, p=[0.5, 0.35, 0.15]),
        }
    )
    ref_predictions = pd.DataFrame({"prediction": rng.choice(["a", "b"], n, p=[0.6, 0.4])})
    ref_predictions["proba.b"] = np.where(
        ref_predictions["prediction"] == "b", rng.uniform(0.55, 0.95, n), rng.uniform(0.05, 0.45, n)
    )
    rules = AlertsSpec(rules=[AlertRuleSpec(signal="drift_share", above=0.3)])
    out = Monitored()
    history = MonitorHistory(store)
    for day in range(6):
        shifted = day in (2, 3, 5)
        current = reference.sample(200, random_state=day).reset_index(drop=True)
        predicted = ref_predictions.sample(200, random_state=day).reset_index(drop=True)
        if shifted:
            current["bill_length_mm"] += 6
            current["island"] = rng.choice(["Biscoe", "Dream", "Torgersen"], 200, p=[0.2, 0.3, 0.5])
            predicted["prediction"] = rng.choice(["a", "b"], 200, p=[0.3, 0.7])
        if day == 5:
            current["body_mass_g"] *= 1.25
        elif day in (1, 4):  # a little: towards the threshold, not past it
            current["body_mass_g"] *= 1.02 + day / 400
        is_b = predicted["prediction"] == "b"
        predicted["proba.b"] = np.where(
            is_b, rng.uniform(0.55, 0.95, 200), rng.uniform(0.05, 0.45, 200)
        )
        inputs = detect_drift(reference, current)
        outputs = detect_drift(ref_predictions, predicted)
        y_pred = predicted["prediction"].to_numpy(dtype=object)
        right = rng.random(200) < (0.7 if shifted else 0.88)
        proba = np.column_stack([1 - predicted["proba.b"], predicted["proba.b"]])
        labelled = np.arange(200) < (0 if day == 0 else 80)  # labels arrive from day 2
        truth = np.where(right, y_pred, np.where(y_pred == "a", "b", "a"))[labelled]
        performance = compare_performance(
            "binary",
            {"accuracy": 0.86},
            y_pred=y_pred,
            proba=proba,
            classes=["a", "b"],
            y_true=truth,
            labelled=labelled,
        )
        start = MONITOR_START + day * MONITOR_DAY
        summary: dict[str, object] = {"uri": "models:/penguins@production"}
        if day > 0:  # the first check was recorded before checks kept the distribution
            summary["distribution"] = class_share_summary(
                _shares(ref_predictions["prediction"]), _shares(predicted["prediction"])
            )
        check = history.record(
            "penguins",
            2,
            inputs=inputs,
            predictions=outputs,
            performance=performance,
            window=(start, start + MONITOR_DAY),
            summary=summary,
        )
        out.checks.append(check.id)
        channels = AlertChannels()
        channels.add("test", _Channel(down=day == 5))
        apply_alerts(
            store,
            rules,
            model="penguins",
            version=2,
            signals=alert_signals(inputs, outputs, performance),
            check_id=check.id,
            channels=channels,
        )
    out.incidents = [i.id for i in history.incidents("penguins")]
    return out


def _shares(values: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.value_counts(normalize=True).items()}


@dataclass
class _Channel:
    """An alert channel that takes every notice, or (down) fails to deliver it."""

    down: bool

    def __call__(self, notice: object) -> None:
        from shipyard.pipeline import DeliveryError

        if self.down:
            raise DeliveryError("the webhook is down")


# --- holdout curves and run logs ----------------------------------------------------------


def curves_json(task: str, aucs: dict[str, float]) -> bytes:
    """A ``curves.json`` as the pipeline stores it: per class (binary: the positive class
    only) a ROC curve with the area ``aucs[label]`` and a precision-recall curve."""
    roc, pr = [], []
    for label, auc in aucs.items():
        bend = round(1.0 - auc, 3)
        roc.append(
            {
                "label": label,
                "n_positive": 40,
                "auc": auc,
                "fpr": [0.0, bend, 1.0],
                "tpr": [0.0, 0.9, 1.0],
            }
        )
        pr.append(
            {
                "label": label,
                "n_positive": 40,
                "average_precision": auc - 0.05,
                "recall": [1.0, 0.8, 0.0],
                "precision": [0.4, 0.9, 1.0],
            }
        )
    n_classes = 2 if task == "binary" else len(aucs)
    body = {"format": 1, "task": task, "n_rows": 100, "n_classes": n_classes, "roc": roc, "pr": pr}
    return json.dumps(body).encode()


@dataclass
class CurveRuns:
    """What :func:`fill_curves` recorded (run ids)."""

    binary: list[str] = field(default_factory=list)  # two runs with curves and a log
    multiclass: str = ""
    regression: str = ""  # a log, no curves
    malformed: str = ""  # a curves.json that is JSON but no curve
    not_json: str = ""
    tampered: str = ""  # curves.json and run.log changed after they were stored
    long_log: str = ""  # 250 lines of log


def fill_curves(store: Store) -> CurveRuns:
    """Runs of the project ``curves`` with the artifacts ``shipyard run`` stores for the UI:
    holdout curves (``curves.json``) and logs (``run.log``), and some that cannot be read."""
    out = CurveRuns()
    log = (
        "2026-12-01T10:00:00.000Z  loading csv data\n2026-12-01T10:00:01.000Z  finished in 1.0 s\n"
    )
    with Tracker(store) as tracker:
        for i, auc in enumerate((0.91, 0.84)):
            with tracker.start_run(f"churn-model-{i}", project="curves") as run:
                run.log_artifact("curves.json", curves_json("binary", {"yes": auc}))
                run.log_artifact("run.log", log.encode())
            out.binary.append(run.id)
        with tracker.start_run("species", project="curves") as run:
            aucs = {"Adelie": 0.99, "Chinstrap": 0.95, "Gentoo": 0.98}
            run.log_artifact("curves.json", curves_json("multiclass", aucs))
        out.multiclass = run.id
        with tracker.start_run("prices", project="curves") as run:
            run.log_artifact("run.log", log.encode())
        out.regression = run.id
        with tracker.start_run("odd-curves", project="curves") as run:
            odd = {"roc": [{"label": "yes", "fpr": ["a", "b"], "tpr": [0, 1]}], "pr": "none"}
            run.log_artifact("curves.json", json.dumps(odd).encode())
        out.malformed = run.id
        with tracker.start_run("not-json", project="curves") as run:
            run.log_artifact("curves.json", b"{not json")
        out.not_json = run.id
        with tracker.start_run("tampered", project="curves") as run:
            run.log_artifact("curves.json", curves_json("binary", {"yes": 0.9}))
            run.log_artifact("run.log", log.encode())
        out.tampered = run.id
        with tracker.start_run("chatty", project="curves") as run:
            lines = [f"2026-12-01T10:00:00.000Z  step {i} <b>bold</b>" for i in range(250)]
            run.log_artifact("run.log", ("\n".join(lines) + "\n").encode())
        out.long_log = run.id
    root = Path(store.artifacts.root)
    for name in ("curves.json", "run.log"):
        (root / "runs" / out.tampered / name).write_bytes(b"changed after it was stored")
    return out


# --- a server's metrics ------------------------------------------------------------------


@contextmanager
def metrics_server() -> Iterator[str]:
    """A loopback HTTP server answering ``/metrics`` as ``shipyard serve`` does (its own
    metrics class), with traffic growing at each scrape: predictions in micro-batches, 10%
    to a canary, a shadow version agreeing. Yields its base URL. For the browser tests and
    the screenshots, which need a live view without loading a model."""
    import random
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from shipyard.serve._metrics import ServeMetrics

    metrics = ServeMetrics(name="penguins", version="2", runtime="onnx")
    metrics.watch_queue(lambda: random.randint(0, 12))
    lock = threading.Lock()

    def traffic() -> None:
        for _ in range(random.randint(40, 80)):
            metrics.observe("/predict", "POST", 200, random.lognormvariate(-5.5, 0.6))
            canary = random.random() < 0.1
            metrics.routed.labels(
                version="3" if canary else "2", role="canary" if canary else "primary"
            ).inc(4)
            metrics.predictions.inc(4)
            metrics.shadow.labels(outcome="agree" if random.random() < 0.95 else "disagree").inc(4)
        for _ in range(12):
            metrics.observe_batch(random.choice((8, 16, 24)), random.choice((2, 4, 6)), 0.002)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            with lock:
                traffic()
                body = metrics.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

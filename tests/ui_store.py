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

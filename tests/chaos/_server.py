"""``shipyard serve`` for the chaos tests, on the HTTP tests' ``tests/integration/_served.py``:
a model quick to fit and to serve, and a graceful stop that reports the exit code."""

from __future__ import annotations

import subprocess
import threading

import pandas as pd
from palmerpenguins import load_penguins

from integration._served import TIMEOUT, Served, serving
from shipyard.data import build_signature, coerce_frame, to_text
from shipyard.model import ModelPackage
from shipyard.spec import parse_spec
from shipyard.train import default_catalogue, make_pipeline, refit
from shipyard.train._onnx import convert_to_onnx

__all__ = ["Served", "drain_output", "penguin_package", "serving", "stop"]


def penguin_package() -> ModelPackage:
    """A logistic regression on the penguins, with its ONNX graph (quick to fit and to serve)."""
    frame = load_penguins().dropna(subset=["species"]).drop(columns=["year"])
    frame = frame.reset_index(drop=True)
    spec = parse_spec("name: penguins\ndata: {source: {type: csv, path: x}, target: species}\n")
    signature = build_signature(frame, spec, "multiclass")
    estimator = default_catalogue().create("linear", "multiclass", seed=0, params={})
    y = pd.Series(to_text(frame["species"]), dtype=object)
    pipeline = refit(make_pipeline(signature, estimator), coerce_frame(frame, signature), y)
    meta = {"name": "penguins", "version": 1, "metrics": {"f1_macro": 0.99}}
    return ModelPackage(
        pipeline, signature, "multiclass", meta, onnx=convert_to_onnx(pipeline, signature)
    )


def stop(served: Served) -> int:
    """SIGTERM (the server drains), SIGKILL if it takes too long; the exit code."""
    if served.proc.poll() is None:
        served.proc.terminate()
        try:
            return served.proc.wait(timeout=TIMEOUT / 2)
        except subprocess.TimeoutExpired:
            served.proc.kill()
    return served.proc.wait(timeout=TIMEOUT)


def drain_output(served: Served) -> list[str]:
    """Read the server's output as it comes, into the list returned.

    A server logging through a long outage (a retry warning per failed write, a traceback per
    failed look at its alias) fills the pipe's 64 KiB otherwise, and then blocks in ``write``.
    """
    lines: list[str] = []
    stream = served.proc.stdout
    assert stream is not None
    threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
    return lines

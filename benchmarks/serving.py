"""Benchmark: Shipyard's prediction server against a hand-written FastAPI endpoint.

Both servers run the same fitted sklearn pipeline (the quickstart's penguins model, logistic
regression) in their own uvicorn process on loopback. The peer is the endpoint people write by
hand: parse a JSON dict, build a DataFrame, call ``predict_proba``, return JSON; no typed
schema, no validation, no metrics. Shipyard adds the generated request schema, coercion,
Prometheus metrics and body limits, so the ratio is the price of those.

Measured from this process with one keep-alive HTTP client: one-record latency (p50, p99
over ``--requests``) and throughput of 100-record batches. Exits non-zero when Shipyard's
one-record p50 is more than ``--max-ratio`` times the peer's.

Run: ``python benchmarks/serving.py [--requests 300] [--max-ratio 2.0]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import statistics
import sys
import time
from typing import Any

import httpx
import pandas as pd
from palmerpenguins import load_penguins
from rich.console import Console
from rich.table import Table

RECORD = {
    "island": "Biscoe",
    "bill_length_mm": 45.1,
    "bill_depth_mm": 14.5,
    "flipper_length_mm": 215.0,
    "body_mass_g": 5000.0,
    "sex": "female",
}


def _package() -> Any:
    from shipyard.data import build_signature, coerce_frame, to_text
    from shipyard.registry import ModelPackage
    from shipyard.spec import parse_spec
    from shipyard.train import default_catalogue, make_pipeline, refit

    frame = load_penguins().dropna(subset=["species"]).drop(columns=["year"])
    frame = frame.reset_index(drop=True)
    spec = parse_spec("name: penguins\ndata: {source: {type: csv, path: x}, target: species}\n")
    signature = build_signature(frame, spec, "multiclass")
    estimator = default_catalogue().create("linear", "multiclass", seed=0, params={})
    y = pd.Series(to_text(frame["species"]), dtype=object)
    model = refit(make_pipeline(signature, estimator), coerce_frame(frame, signature), y)
    return ModelPackage(model, signature, "multiclass", {"name": "penguins", "version": 1})


def _serve_shipyard(port: int) -> None:
    import uvicorn

    from shipyard.serve import create_app

    uvicorn.run(create_app(_package()), host="127.0.0.1", port=port, log_level="warning")


def _serve_peer(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    package = _package()
    pipeline, columns = package.pipeline, package.signature.input_names
    classes = [str(c) for c in pipeline.classes_]
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any] | list[dict[str, Any]]) -> Any:
        records = body if isinstance(body, list) else [body]
        proba = pipeline.predict_proba(pd.DataFrame.from_records(records, columns=columns))
        out = [
            {
                "prediction": classes[row.argmax()],
                "probabilities": dict(zip(classes, row.tolist(), strict=True)),
            }
            for row in proba
        ]
        return out if isinstance(body, list) else out[0]

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: mp.Process) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not proc.is_alive():
            raise SystemExit(f"server for {url} exited with {proc.exitcode}")
        try:
            httpx.post(f"{url}/predict", json=RECORD, timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not answer within 120 s")


def _measure(url: str, n_requests: int) -> dict[str, float]:
    batch = [RECORD] * 100
    with httpx.Client(timeout=30) as client:
        for _ in range(20):  # warm up
            client.post(f"{url}/predict", json=RECORD).raise_for_status()
        latencies = []
        for _ in range(n_requests):
            start = time.perf_counter()
            client.post(f"{url}/predict", json=RECORD).raise_for_status()
            latencies.append(time.perf_counter() - start)
        n_batches = max(10, n_requests // 10)
        start = time.perf_counter()
        for _ in range(n_batches):
            client.post(f"{url}/predict", json=batch).raise_for_status()
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        "batch_records_per_s": n_batches * len(batch) / elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="one-record requests to time")
    parser.add_argument("--max-ratio", type=float, default=2.0, help="allowed p50 ratio")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    results: dict[str, dict[str, float]] = {}
    for name, target in (("shipyard", _serve_shipyard), ("hand-written FastAPI", _serve_peer)):
        port = _free_port()
        proc = ctx.Process(target=target, args=(port,), daemon=True)
        proc.start()
        try:
            url = f"http://127.0.0.1:{port}"
            _wait(url, proc)
            results[name] = _measure(url, args.requests)
        finally:
            proc.terminate()
            proc.join(10)
    ours, peer = results["shipyard"], results["hand-written FastAPI"]
    table = Table(title=f"Serving the penguins model ({args.requests} one-record requests)")
    for col in ("measure", "Shipyard", "hand-written FastAPI", "ratio (Shipyard / peer)"):
        table.add_column(col)
    for key, label in (("p50_ms", "one record, p50 (ms)"), ("p99_ms", "one record, p99 (ms)")):
        table.add_row(
            label, f"{ours[key]:.2f}", f"{peer[key]:.2f}", f"{ours[key] / peer[key]:.2f}x"
        )
    key = "batch_records_per_s"
    table.add_row(
        "100-record batches (records/s)",
        f"{ours[key]:,.0f}",
        f"{peer[key]:,.0f}",
        f"{ours[key] / peer[key]:.2f}x",
    )
    Console().print(table)
    ratio = ours["p50_ms"] / peer["p50_ms"]
    if ratio > args.max_ratio:
        print(f"FAIL: one-record p50 is {ratio:.2f}x the peer's (allowed {args.max_ratio}x)")
        return 1
    print(f"ok: one-record p50 is {ratio:.2f}x the peer's (allowed {args.max_ratio}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

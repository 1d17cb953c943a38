"""Hot reload under load: the server follows its alias through a promote and a rollback.

``shipyard serve models:/penguins@production`` runs in its own process while 16 clients send
requests back to back. The test promotes version 2, waits until answers come from it, rolls
back to version 1 and waits again, counting every answer: all are 200s, and each names the
version that answered it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd
import pytest
from _served import Served, serving
from palmerpenguins import load_penguins

from shipyard.data import build_signature, coerce_frame, to_text
from shipyard.model import ModelPackage
from shipyard.registry import Registry
from shipyard.spec import parse_spec
from shipyard.store import Store
from shipyard.train import default_catalogue, make_pipeline, refit
from shipyard.train._onnx import convert_to_onnx

pytestmark = [pytest.mark.http, pytest.mark.slow]

CLIENTS = 16
SWITCH_WITHIN = 30.0  # seconds for an alias move to reach the answers


def _package(key: str) -> ModelPackage:
    frame = load_penguins().dropna(subset=["species"]).drop(columns=["year"])
    frame = frame.reset_index(drop=True)
    spec = parse_spec("name: penguins\ndata: {source: {type: csv, path: x}, target: species}\n")
    signature = build_signature(frame, spec, "multiclass")
    estimator = default_catalogue().create(key, "multiclass", seed=0, params={})
    y = pd.Series(to_text(frame["species"]), dtype=object)
    pipeline = refit(make_pipeline(signature, estimator), coerce_frame(frame, signature), y)
    onnx = convert_to_onnx(pipeline, signature)
    return ModelPackage(pipeline, signature, "multiclass", {"name": "penguins"}, onnx=onnx)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-reload")
    store = Store.from_env(None, root=root / ".shipyard")
    try:
        registry = Registry(store)
        for key in ("linear", "lightgbm"):
            registry.register("penguins", _package(key))
        registry.promote("penguins", 1, moved_by="test")
    finally:
        store.close()
    return root


def _move(home: Path, version: int | None) -> None:
    store = Store.from_env(None, root=home / ".shipyard")
    try:
        registry = Registry(store)
        if version is None:
            registry.rollback("penguins", moved_by="test")
        else:
            registry.promote("penguins", version, moved_by="test", reason="reload test")
    finally:
        store.close()


def test_promote_and_rollback_under_load_fail_no_request(home: Path) -> None:
    record = json.loads(
        load_penguins().drop(columns=["species", "year"]).iloc[:1].to_json(orient="records")
    )[0]
    options = ["--reload-interval", "0.2", "--workers", "1"]
    with serving(home, "models:/penguins@production", *options) as served:
        answers: Counter[str] = Counter()
        latest: dict[int, str] = {}
        stop = threading.Event()

        def client(i: int) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{served.port}", timeout=60) as http:
                while not stop.is_set():
                    try:
                        response = http.post("/predict", json=record)
                    except httpx.HTTPError as exc:
                        answers[type(exc).__name__] += 1
                        continue
                    version = response.headers.get("x-shipyard-model", "?")
                    answers[f"{response.status_code} {version}"] += 1
                    if response.status_code == 200:
                        assert response.json()["model"]["version"] == version.split("/")[1]
                    latest[i] = version

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            _wait_for(latest, "penguins/1", served)
            _move(home, 2)
            _wait_for(latest, "penguins/2", served)
            _move(home, None)  # rollback
            _wait_for(latest, "penguins/1", served)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        metrics = httpx.get(f"http://127.0.0.1:{served.port}/metrics").text
    summary = dict(answers)
    assert set(answers) <= {"200 penguins/1", "200 penguins/2"}, summary
    assert answers["200 penguins/1"] > 0 and answers["200 penguins/2"] > 0, summary
    assert "shipyard_model_reloads_total 2.0" in metrics
    assert 'shipyard_model_info{name="penguins",runtime="onnx",version="1"} 1.0' in metrics


def _wait_for(latest: dict[int, str], version: str, served: Served) -> None:
    """Until every client's latest answer came from ``version``."""
    deadline = time.monotonic() + SWITCH_WITHIN
    while time.monotonic() < deadline:
        if len(latest) == CLIENTS and set(latest.values()) == {version}:
            return
        time.sleep(0.05)
    raise AssertionError(f"answers did not move to {version}: {latest}\n{served.output()}")


def test_canary_and_shadow_from_the_command_line(home: Path) -> None:
    record = json.loads(
        load_penguins().drop(columns=["species", "year"]).iloc[:1].to_json(orient="records")
    )[0]
    options = ["--canary", "models:/penguins/2", "--canary-share", "0.5"]
    options += ["--shadow", "models:/penguins/2", "--workers", "1"]
    with serving(home, "models:/penguins/1", *options) as served:
        url = f"http://127.0.0.1:{served.port}"
        with httpx.Client(base_url=url, timeout=60) as http:
            seen = Counter(
                http.post("/predict", json=record).headers["x-shipyard-model"] for _ in range(60)
            )
            meta = http.get("/metadata").json()
    assert set(seen) == {"penguins/1", "penguins/2"}, seen
    assert meta["canary"]["version"] == "2" and meta["shadow"]["version"] == "2"

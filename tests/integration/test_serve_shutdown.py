"""``shipyard serve`` under load, stopped with SIGTERM: every admitted request is answered.

The server runs as a user runs it (``python -m shipyard serve`` on a registered model, in its
own process). Requests are fully sent before the signal; the test then counts every answer:
each admitted request must get a 200, none may be reset, and the process must exit 0. A request
on a new connection after shutdown began may be refused at connect: that is counted apart, as
it was never admitted.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from _served import TIMEOUT, Served, register, serving
from palmerpenguins import load_penguins
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from shipyard.data import ColumnSchema, Signature, coerce_frame
from shipyard.registry import ModelPackage
from shipyard.store import read_predictions

pytestmark = [pytest.mark.http, pytest.mark.slow]

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]
IN_FLIGHT = 64  # concurrent requests sent before SIGTERM, one connection each
KEEP_ALIVE = 8  # idle keep-alive connections that send one more request after SIGTERM
HAMMERS = 8  # clients opening one connection after another through the shutdown
RECORDS = 300  # records per request: enough work that requests are still running at SIGTERM


def _package() -> ModelPackage:
    """A random forest on the penguins: slow enough that 64 requests queue up on 2 cores."""
    frame = load_penguins().dropna(subset=["species"])
    inputs = [
        ColumnSchema(
            name=c,
            kind="category",
            dtype="str",
            nullable=True,
            categories=tuple(sorted(frame[c].dropna().unique())),
        )
        for c in CATEGORICAL
    ] + [ColumnSchema(name=c, kind="number", dtype="float64", nullable=True) for c in NUMERIC]
    sig = Signature(inputs=tuple(inputs), classes=tuple(sorted(frame["species"].unique())))
    features = ColumnTransformer(
        [
            ("num", SimpleImputer(), NUMERIC),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                CATEGORICAL,
            ),
        ]
    )
    forest = RandomForestClassifier(n_estimators=150, random_state=0)
    pipeline = Pipeline([("features", features), ("model", forest)])
    pipeline.fit(coerce_frame(frame, sig), frame["species"].to_numpy())
    meta = {"name": "penguins", "version": 1}
    return ModelPackage(pipeline=pipeline, signature=sig, task="multiclass", metadata=meta)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Shipyard home with ``models:/penguins/1`` registered."""
    root = tmp_path_factory.mktemp("serve-shutdown")
    register(root, "penguins", _package())
    return root


@pytest.fixture
def served(home: Path, tmp_path: Path) -> Iterator[Served]:
    log = ["--prediction-log", str(tmp_path / "predictions")]
    with serving(home, "models:/penguins/1", *log) as server:
        yield server


def _body(n: int) -> bytes:
    frame = load_penguins()[CATEGORICAL + NUMERIC]
    rows = json.loads(frame.to_json(orient="records"))
    return json.dumps([rows[i % len(rows)] for i in range(n)]).encode()


BODY = _body(RECORDS)
HEADERS = {"content-type": "application/json"}


def _outcome(conn: http.client.HTTPConnection) -> tuple[str, dict[str, str]]:
    """Read one answer: ``"200"`` (with a full, valid body), another status, or the error."""
    try:
        response = conn.getresponse()
        payload = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__, {}
    if response.status == 200:
        assert len(json.loads(payload)["predictions"]) == RECORDS
    return str(response.status), headers


def test_sigterm_answers_every_admitted_request_then_exits_0(
    served: Served, tmp_path: Path
) -> None:
    # Keep-alive connections that have answered once and sit idle at SIGTERM.
    idle = [
        http.client.HTTPConnection("127.0.0.1", served.port, timeout=TIMEOUT)
        for _ in range(KEEP_ALIVE)
    ]
    for conn in idle:
        conn.request("POST", "/predict", body=BODY, headers=HEADERS)
        assert _outcome(conn)[0] == "200"

    # IN_FLIGHT requests, each fully sent on its own connection before the signal.
    sent = threading.Barrier(IN_FLIGHT + 1, timeout=TIMEOUT)
    results: list[str] = []
    answered_before_signal = threading.Event()

    def one_request() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=TIMEOUT)
        try:
            conn.connect()
            conn.request("POST", "/predict", body=BODY, headers=HEADERS)
        finally:
            sent.wait()
        status, _ = _outcome(conn)
        if not answered_before_signal.is_set():
            results.append(f"early {status}")
        else:
            results.append(status)
        conn.close()

    # Clients that keep opening connections through the shutdown: some wait in the kernel's
    # accept queue when the server stops listening, and must be served, not reset.
    late: Counter[str] = Counter()
    stop_hammering = threading.Event()

    def hammer() -> None:
        while not stop_hammering.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
            try:
                conn.connect()
            except (ConnectionRefusedError, TimeoutError):
                late["refused at connect"] += 1
                return
            # accepted: its answer may take a while on a loaded machine (a dropped one would
            # fail fast, reset or closed; a lost one would time out here too)
            assert conn.sock is not None
            conn.sock.settimeout(TIMEOUT)
            try:
                conn.request("POST", "/predict", body=BODY, headers=HEADERS)
            except OSError as exc:
                late[f"{type(exc).__name__} while sending"] += 1
                return
            late[_outcome(conn)[0]] += 1
            conn.close()

    threads = [threading.Thread(target=one_request) for _ in range(IN_FLIGHT)]
    hammers = [threading.Thread(target=hammer) for _ in range(HAMMERS)]
    for t in threads:
        t.start()
    sent.wait()  # every request is on the wire
    for t in hammers:
        t.start()
    served.proc.send_signal(signal.SIGTERM)
    answered_before_signal.set()

    # Requests sent right after the signal on idle keep-alive connections are answered, and
    # the answers close those connections.
    keep_alive: list[tuple[str, dict[str, str]]] = []
    for conn in idle:
        conn.request("POST", "/predict", body=BODY, headers=HEADERS)
    for conn in idle:
        keep_alive.append(_outcome(conn))

    for t in threads:
        t.join(timeout=TIMEOUT)
    for t in hammers:
        t.join(timeout=TIMEOUT)
    stop_hammering.set()
    code = served.proc.wait(timeout=TIMEOUT)
    output = served.output()

    counts = Counter(results)
    in_flight_at_signal = sum(n for s, n in counts.items() if not s.startswith("early"))
    kept = Counter(s for s, _ in keep_alive)
    summary = f"in flight: {dict(counts)}; keep-alive: {dict(kept)}; late: {dict(late)}"
    print(summary)  # shown with -s: the numbers behind the verdict
    assert sum(counts.values()) == IN_FLIGHT, summary
    assert set(counts) <= {"200", "early 200"}, f"{summary}\n{output}"
    assert in_flight_at_signal >= IN_FLIGHT // 4, f"too few requests were in flight: {summary}"
    assert [s for s, _ in keep_alive] == ["200"] * KEEP_ALIVE, f"{summary}\n{output}"
    assert all(h.get("connection") == "close" for _, h in keep_alive), summary
    assert late["refused at connect"] == HAMMERS, f"{summary}\n{output}"
    assert set(late) <= {"200", "refused at connect"}, f"{summary}\n{output}"
    assert code == 0, f"exit code {code}; {summary}\n{output}"
    # every answered prediction reached the prediction log before the process exited
    answered = KEEP_ALIVE + sum(counts.values()) + KEEP_ALIVE + late["200"]  # warm-ups first
    logged = read_predictions(tmp_path / "predictions", model="penguins")
    assert len(logged) == answered * RECORDS, summary
    assert logged["prediction_id"].is_unique

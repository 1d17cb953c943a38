"""PII never leaks: plant unique personal values in a dataset, run the whole lifecycle (validate,
run, serve, predict, labels, monitor) and grep every file and table Shipyard wrote: zero hits.

The planted values all hold a marker made of letters that no hex digest, base64-free report
or number can produce by chance, so one search finds any of them, whole or in part."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from _served import serving

from cli_runner import cli
from shipyard.store import read_predictions

MARK = "qzwvkjmark"  # no hex digit run, no English word: only a planted value holds it
KEY = "a-test-pii-key-that-is-long-enough"
SPEC = """\
name: cancer
data:
  source: {type: csv, path: data/train.csv}
  target: target
features:
  pii: {email: drop, full_name: drop, customer_id: hash}
models:
  - model: linear
monitoring:
  reference_rows: 200
"""


def _planted(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    n = len(frame)
    ids = range(start, start + n)
    return frame.assign(
        email=[f"{MARK}{i:05d}@example.com" for i in ids],
        full_name=[f"Ann {MARK.title()}{i:05d}" for i in ids],
        customer_id=[f"C-{MARK}-{i:05d}" for i in ids],
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, str | None]]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["target"] = np.where(frame["target"] == 1, "benign", "malignant")
    (tmp_path / "data").mkdir()
    _planted(frame, 0).to_csv(tmp_path / "data" / "train.csv", index=False)
    (tmp_path / "shipyard.yaml").write_text(SPEC)
    monkeypatch.setenv("SHIPYARD_PII_KEY", KEY)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    yield tmp_path, url


def _files_holding(root: Path, inputs: set[Path]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and path not in inputs and MARK.encode() in path.read_bytes().lower():
            hits.append(str(path.relative_to(root)))
    return hits


def _tables_holding(url: str) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    hits = []
    try:
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()
                if MARK in " ".join(str(v) for row in rows for v in row).lower():
                    hits.append(table)
    finally:
        engine.dispose()
    return hits


def test_no_planted_value_is_written_anywhere(
    project: tuple[Path, str | None], capsys: pytest.CaptureFixture[str]
) -> None:
    root, url = project
    store_args = ["--store", url] if url else []
    said: list[str] = []

    code, out = cli(capsys, *store_args, "validate")
    said.append(out)
    assert code == 0, out
    code, out = cli(capsys, *store_args, "run")
    said.append(out)
    assert code == 0, out

    # serve: clients send the personal fields along; the log keeps the hash or nothing
    train = pd.read_csv(root / "data" / "train.csv")
    fresh = _planted(train.drop(columns=["target", "email", "full_name", "customer_id"]), 10_000)
    records = fresh.head(120).to_dict("records")
    log = url or str(root / ".shipyard" / "predictions")
    options = ["--workers", "1", "--prediction-log", log, "--prediction-log-flush-seconds", "0.2"]
    ids = []
    with (
        serving(root, "models:/cancer@production", *options, store=url) as served,
        httpx.Client(base_url=f"http://127.0.0.1:{served.port}", timeout=30) as client,
    ):
        one = client.post("/predict", json=records[0])
        assert one.status_code == 200, one.text
        ids.append(one.json()["prediction_id"])
        many = client.post("/predict", json=records[1:])
        assert many.status_code == 200, many.text
        ids += [p["prediction_id"] for p in many.json()["predictions"]]
        bad = client.post("/predict", json={**records[0], "mean_radius": "wide"})
        assert bad.status_code == 422
        said.append(bad.text)
        said.append(client.get("/metrics").text)
        said.append(client.get("/openapi.json").text)
    said.append(served.output())
    logged = read_predictions(log, model="cancer")
    assert sorted(logged["prediction_id"]) == sorted(ids)
    assert "input.email" not in logged and "input.full_name" not in logged
    assert logged["input.customer_id"].str.fullmatch(r"pii:[0-9a-f]{32}").all()

    # batch prediction writes the hash, never the value
    fresh.iloc[120:220].to_csv(root / "to_score.csv", index=False)
    code, out = cli(
        capsys,
        *store_args,
        "predict",
        "models:/cancer@production",
        "to_score.csv",
        "-o",
        "scored.csv",
    )
    said.append(out)
    assert code == 0, out
    scored = pd.read_csv(root / "scored.csv")
    assert "email" not in scored and scored["customer_id"].str.startswith("pii:").all()

    # labels and monitoring over the logged predictions
    # labels keyed by the customer id in clear join the hashed log, and are stored hashed
    customers = [r["customer_id"] for r in records]
    labels = pd.DataFrame({"customer_id": customers, "label": ["benign"] * len(customers)})
    labels.to_csv(root / "labels.csv", index=False)
    args = ["labels", "add", "labels.csv", "--model", "cancer", "--predictions", log]
    code, out = cli(capsys, *store_args, *args, "--key", "customer_id")
    said.append(out)
    assert code == 0 and "Added 120 of 120 labels" in out, out
    args = ["monitor", "models:/cancer@production", "--predictions", log]
    code, out = cli(capsys, *store_args, *args, "--report", "monitor.html")
    said.append(out)
    assert code == 0, out
    assert (root / "monitor.html").stat().st_size > 0

    inputs = {root / "data" / "train.csv", root / "to_score.csv", root / "labels.csv"}
    assert _files_holding(root, inputs) == []
    assert MARK not in "\n".join(said).lower()
    if url is not None:
        assert _tables_holding(url) == []

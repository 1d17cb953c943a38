"""``shipyard forget`` and ``shipyard audit`` as a user runs them: a project with a hashed PII
column trained, its predictions logged and labelled, then a subject erased. The subject's value
never appears in the output, the audit log or any file Shipyard wrote."""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer

from cli_runner import cli
from shipyard.cli import _forget as forget_cli
from shipyard.data import PII_KEY_ENV, PiiKey
from shipyard.registry import LabelStore
from shipyard.store import ENCRYPTION_KEY_ENV, ParquetSink, PredictionEntry, Store, read_predictions

KEY_TEXT = "a-test-pii-key-that-is-long-enough"
KEY = PiiKey(KEY_TEXT)
MARK = "qzwvk"
SUBJECT = f"C-{MARK}7"
SPEC = """\
name: churn
data: {source: {type: csv, path: data/train.csv}, target: churned}
features:
  pii: {customer_id: hash}
split: {cv_folds: 2}
models:
  - model: linear
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_ARTIFACT_ROOT", raising=False)
    monkeypatch.delenv(ENCRYPTION_KEY_ENV, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.setenv(PII_KEY_ENV, KEY_TEXT)
    monkeypatch.setenv("SHIPYARD_USER", "dpo")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _log(home: Path, customers: list[str]) -> None:
    """One served prediction per customer, the field hashed as the server logs it."""
    entries = [
        PredictionEntry(
            f"r{i}",
            time.time() - 60,
            "churn",
            "1",
            [{"x1": 0.1, "x2": 0.2, "customer_id": KEY.hash(customer)}],
            [{"prediction": "no", "prediction_id": f"r{i}-0"}],
            1.0,
        )
        for i, customer in enumerate(customers)
    ]
    sink = ParquetSink(home / ".shipyard" / "predictions")
    sink.write(sink.encode(entries))


def _ids(home: Path) -> list[str]:
    return sorted(
        read_predictions(home / ".shipyard" / "predictions", model="churn")["prediction_id"]
    )


def _files_holding(root: Path, text: str, skip: Path) -> list[str]:
    return [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and skip not in p.parents and text.encode() in p.read_bytes()
    ]


def test_forget_a_customer_end_to_end(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=60)
    (home / "data").mkdir()
    pd.DataFrame(
        {
            "customer_id": [f"C-{MARK}{i}" for i in range(60)],
            "x1": x1,
            "x2": rng.normal(size=60),
            "churned": np.where(x1 > 0, "yes", "no"),
        }
    ).to_csv(home / "data" / "train.csv", index=False)
    (home / "shipyard.yaml").write_text(SPEC)
    code, out = cli(capsys, "run")
    assert code == 0, out
    _log(home, [SUBJECT, f"C-{MARK}8", SUBJECT])
    pd.DataFrame({"prediction_id": ["r0-0", "r1-0"], "label": ["yes", "no"]}).to_csv(
        home / "outcomes.csv", index=False
    )
    code, out = cli(capsys, "labels", "add", "outcomes.csv", "--model", "churn")
    assert code == 0, out

    code, out = cli(capsys, "forget", "--column", "customer_id", "--value", SUBJECT, "--dry-run")
    assert code == 0, out
    assert "Dry run" in out and "would remove 2 logged prediction(s) and 1 label(s)" in out
    assert _ids(home) == ["r0-0", "r1-0", "r2-0"]

    code, out = cli(capsys, "forget", "--column", "customer_id", "--value", SUBJECT, "--yes")
    assert code == 0, out
    assert "removed 2 logged prediction(s) and 1 label(s)" in out
    assert KEY.hash(SUBJECT) in out and "the given value" in out
    assert "models:/churn/1" in out and "Retrain without the subject" in out
    assert re.search(r"Recorded in the audit log as entry \d+ \(shipyard audit\)", out), out
    assert MARK not in out
    assert _ids(home) == ["r1-0"]

    code, out = cli(capsys, "audit")
    assert code == 0, out
    assert "forget" in out and "dpo" in out and KEY.hash(SUBJECT) in out
    assert "2 prediction(s), 1 label(s) removed" in out and "models:/churn/1" in out
    assert MARK not in out
    code, out = cli(capsys, "audit", "--action", "promote", "--model", "churn")
    assert code == 0 and "0 audit entr(ies)" in out
    # the training data holds the value; nothing Shipyard wrote does
    assert _files_holding(home, SUBJECT, skip=home / "data") == []


def test_another_key_is_a_warning(
    capsys: pytest.CaptureFixture[str], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "data").mkdir()
    rng = np.random.default_rng(1)
    x1 = rng.normal(size=40)
    frame = pd.DataFrame(
        {"customer_id": [f"C-{i}" for i in range(40)], "x1": x1, "x2": x1 * 2}
    ).assign(churned=np.where(x1 > 0, "yes", "no"))
    frame.to_csv(home / "data" / "train.csv", index=False)
    (home / "shipyard.yaml").write_text(SPEC)
    code, out = cli(capsys, "run")
    assert code == 0, out
    monkeypatch.setenv(PII_KEY_ENV, "another-key-that-is-long-enough")
    code, out = cli(capsys, "forget", "--column", "customer_id", "--value", "C-1", "--dry-run")
    assert code == 0, out
    assert "warning:" in out and "run forget again with the key it was trained with" in out
    assert "unknown" in out and "C-1 " not in out


@pytest.fixture
def labelled(home: Path) -> Path:
    """A store without models; a log and labels keyed by the customer field."""
    _log(home, [SUBJECT, f"C-{MARK}8"])
    with Store.open(root=home / ".shipyard") as store:
        hashed: Any = [KEY.hash(SUBJECT)]
        LabelStore(store).add("churn", hashed, ["yes"], key_column="customer_id")
    return home


def test_forget_asks_before_erasing(
    capsys: pytest.CaptureFixture[str], labelled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forget_cli, "_interactive", lambda: True)
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: False)
    code, out = cli(capsys, "forget", "--column", "customer_id", "--value", SUBJECT)
    assert code == 1
    assert "would remove 1 logged prediction(s) and 1 label(s)" in out
    assert "Nothing was erased." in out and _ids(labelled) == ["r0-0", "r1-0"]
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: True)
    code, out = cli(capsys, "forget", "--column", "customer_id", "--value", SUBJECT)
    assert code == 0, out
    assert "removed 1 logged prediction(s) and 1 label(s)" in out
    assert _ids(labelled) == ["r1-0"] and MARK not in out


def test_the_value_can_come_from_stdin(
    capsys: pytest.CaptureFixture[str], labelled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{SUBJECT}\n"))
    code, out = cli(capsys, "forget", "--column", "customer_id", "--value", "-", "--yes")
    assert code == 0, out
    assert "removed 1 logged prediction(s)" in out and _ids(labelled) == ["r1-0"]


def test_another_log_and_a_missing_default(
    capsys: pytest.CaptureFixture[str], labelled: Path
) -> None:
    moved = labelled / "elsewhere"
    (labelled / ".shipyard" / "predictions").rename(moved)
    code, out = cli(capsys, "forget", "--column", "customer_id", "--value", SUBJECT, "-y")
    assert code == 0, out
    assert "No prediction log at" in out and "removed 0 logged prediction(s) and 1 label" in out
    code, out = cli(
        capsys,
        "forget",
        "--column",
        "customer_id",
        "--value",
        SUBJECT,
        "--predictions",
        str(moved),
        "--yes",
    )
    assert code == 0, out
    assert "removed 1 logged prediction(s)" in out and f"Prediction log: {moved}" in out


def test_user_errors_exit_1_without_the_value(
    capsys: pytest.CaptureFixture[str], labelled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("forget", "--column", "customer_id", "--value", SUBJECT)
    code, out = cli(capsys, *args)  # no terminal to ask on
    assert code == 1 and "pass --yes to confirm" in out
    code, out = cli(capsys, *args, "--yes", "--model", "nope")
    assert code == 1 and "nope" in out
    code, out = cli(capsys, "forget", "--column", "custmer_id", "--value", SUBJECT, "--yes")
    assert code == 1 and "'custmer_id' is no input or PII column" in out
    code, out = cli(capsys, "forget", "--column", "customer_id", "--value", " ", "--yes")
    assert code == 1 and "the value is empty" in out
    monkeypatch.delenv(PII_KEY_ENV)
    code, out = cli(capsys, *args, "--yes")
    assert code == 1 and f"needs {PII_KEY_ENV}" in out
    assert MARK not in out
    assert _ids(labelled) == ["r0-0", "r1-0"]


def test_audit_shows_failures_and_other_actions(
    capsys: pytest.CaptureFixture[str], labelled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.registry import AuditLog

    with Store.open(root=labelled / ".shipyard") as store:
        AuditLog(store).record(
            "promote", "bo", {"version": 2, "alias": "production"}, model="churn"
        )
    next((labelled / ".shipyard" / "predictions").rglob("*.parquet")).write_bytes(b"damaged")
    code, out = cli(capsys, "forget", "--column", "customer_id", "--value", SUBJECT, "--yes")
    assert code == 1 and "cannot read the prediction log file" in out
    code, out = cli(capsys, "audit", "--model", "churn")
    assert code == 0, out
    assert '{"alias": "production", "version": 2}' in out
    assert "(failed): ? prediction(s), ? label(s) removed; error: DataError: cannot read" in out
    with Store.open(root=labelled / ".shipyard") as store:
        assert [e.action for e in AuditLog(store).entries()] == ["forget", "promote"]

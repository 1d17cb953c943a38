"""``shipyard serve`` through ``shipyard.cli.main``: what it says and how it exits on errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from palmerpenguins import load_penguins
from sklearn.dummy import DummyClassifier

from cli_runner import cli
from shipyard.data import ColumnSchema, Signature
from shipyard.registry import ModelPackage, Registry
from shipyard.store import Store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with ``models:/penguins/1``, found through SHIPYARD_HOME."""
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_ARTIFACT_ROOT", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.setenv("COLUMNS", "200")
    frame = load_penguins().dropna()
    sig = Signature(
        inputs=(
            ColumnSchema(name="bill_length_mm", kind="number", dtype="float64", nullable=True),
        ),
        classes=tuple(sorted(frame["species"].unique())),
    )
    model = DummyClassifier().fit(frame[["bill_length_mm"]], frame["species"])
    package = ModelPackage(pipeline=model, signature=sig, task="multiclass", metadata={})
    store = Store.from_env(None, root=tmp_path / ".shipyard")
    try:
        Registry(store).register("penguins", package)
    finally:
        store.close()
    return tmp_path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_busy_port_exits_1_with_the_reason_before_serving(
    capsys: pytest.CaptureFixture[str], home: Path, busy_port: int
) -> None:
    code, out = cli(capsys, "serve", "models:/penguins/1", "--port", str(busy_port))
    assert code == 1, out
    assert (
        f"error: cannot listen on 127.0.0.1:{busy_port}: the address is in use; pick another --port"
    ) in out
    assert "Serving" not in out
    assert "Traceback" not in out


def test_port_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, out = cli(capsys, "serve", "models:/penguins/1", "--port", "70000")
    assert code == 1
    assert "--port" in out and "65535" in out and "Serving" not in out


def test_serve_help_lists_the_limits_and_the_graceful_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = cli(capsys, "serve", "--help")
    assert code == 0
    for option in ("--max-records", "--max-body-bytes", "--graceful-timeout"):
        assert option in out


def test_a_short_api_key_exits_1_without_showing_it(
    capsys: pytest.CaptureFixture[str], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_API_KEYS", "tiny-key")
    code, out = cli(capsys, "serve", "models:/penguins/1", "--port", "0")
    assert code == 1
    assert "SHIPYARD_API_KEYS entry 1: an API key must be at least 16 characters" in out
    assert "tiny-key" not in out and "Serving" not in out


def test_a_missing_onnx_graph_and_contradicting_limits_are_user_errors(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out = cli(capsys, "serve", "models:/penguins/1", "--runtime", "onnx")
    assert code == 1 and "has no ONNX graph" in out
    code, out = cli(
        capsys, "serve", "models:/penguins/1", "--max-queue-rows", "10", "--max-batch-rows", "20"
    )
    assert code == 1 and "max_queue_rows (10) must be at least max_batch_rows (20)" in out


def test_the_prediction_log_comes_from_the_environment_as_deploy_sets_it(
    capsys: pytest.CaptureFixture[str], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``shipyard deploy`` gives the server SHIPYARD_PREDICTION_LOG (from a Secret): the
    option's environment form; the flag still wins."""
    import shipyard.serve

    served: list[Any] = []

    def fake_run_server(app: Any, **kwargs: Any) -> Any:
        served.append(app.shipyard.config.prediction_log)
        return SimpleNamespace(drained=True)

    monkeypatch.setattr(shipyard.serve, "run_server", fake_run_server)
    monkeypatch.setenv("SHIPYARD_PREDICTION_LOG", "off")
    code, out = cli(capsys, "serve", "models:/penguins/1", "--port", "0", "--workers", "1")
    assert code == 0, out
    assert served == [None] and "no prediction log" in out
    folder = home / "logged"
    code, out = cli(
        capsys, "serve", "models:/penguins/1", "--port", "0", "--workers", "1",
        "--prediction-log", str(folder),
    )  # fmt: skip
    assert code == 0, out
    assert served[-1] == str(folder)

"""``shipyard serve --tls-certfile/--tls-keyfile``: HTTPS with the given certificate, and a
clear error (exit 1, before serving) for a missing or mismatched file."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import httpx
import pytest
from _served import register, serving
from palmerpenguins import load_penguins
from sklearn.dummy import DummyClassifier

from certificates import self_signed
from cli_runner import cli
from shipyard.data import ColumnSchema, Signature
from shipyard.registry import ModelPackage

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    return self_signed(folder, name)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-tls")
    frame = load_penguins().dropna()
    sig = Signature(
        inputs=(
            ColumnSchema(name="bill_length_mm", kind="number", dtype="float64", nullable=True),
        ),
        classes=tuple(sorted(frame["species"].unique())),
    )
    model = DummyClassifier().fit(frame[["bill_length_mm"]], frame["species"])
    register(root, "penguins", ModelPackage(model, sig, "multiclass", {}))
    return root


@pytest.mark.parametrize("workers", ["1", "2"])
def test_https_with_the_given_certificate_and_no_plain_http(
    home: Path, tmp_path: Path, workers: str
) -> None:
    cert, key = _certificate(tmp_path, "server")
    trust = ssl.create_default_context(cafile=str(cert))
    options = ["--tls-certfile", str(cert), "--tls-keyfile", str(key), "--workers", workers]
    with serving(home, "models:/penguins/1", *options, tls=trust) as served:
        with httpx.Client(verify=trust, timeout=10) as client:
            response = client.post(
                f"https://127.0.0.1:{served.port}/predict", json={"bill_length_mm": 40.1}
            )
        assert response.status_code == 200 and response.json()["prediction"]
        with pytest.raises(httpx.HTTPError):  # plain HTTP gets no answer
            httpx.get(f"http://127.0.0.1:{served.port}/health", timeout=5)
        with pytest.raises(httpx.ConnectError):  # nor does a client that does not trust it
            httpx.get(f"https://127.0.0.1:{served.port}/health", timeout=5)


def test_tls_errors_exit_1_before_serving(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(home / ".shipyard"))
    cert, _ = _certificate(tmp_path, "one")
    _, other_key = _certificate(tmp_path, "two")
    serve = ["serve", "models:/penguins/1", "--port", "0"]
    code, out = cli(capsys, *serve, "--tls-certfile", str(cert))
    assert code == 1 and "give both --tls-certfile and --tls-keyfile" in out
    code, out = cli(capsys, *serve, "--tls-certfile", str(cert), "--tls-keyfile", "nope.key")
    assert code == 1 and "the TLS key file nope.key does not exist" in out
    code, out = cli(capsys, *serve, "--tls-certfile", str(cert), "--tls-keyfile", str(other_key))
    assert code == 1 and f"cannot use the TLS certificate {cert}" in out
    assert "Serving" not in out and "PRIVATE KEY" not in out

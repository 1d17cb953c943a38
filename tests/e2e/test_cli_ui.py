"""``shipyard ui`` as a user runs it: what it refuses before serving, and a real start (HTTPS,
a keys file, a login) in a subprocess."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import ssl
from pathlib import Path

import httpx
import pytest

from certificates import self_signed
from cli_runner import cli
from shipyard.cli._ui import is_loopback
from shipyard.store import Store
from ui_store import running_ui, wait_healthy

ADMIN_KEY = "ui-admin-key-0123456789"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty store found through SHIPYARD_HOME."""
    for name in ("SHIPYARD_STORE_URL", "SHIPYARD_ARTIFACT_ROOT", "SHIPYARD_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.setenv("COLUMNS", "200")
    Store.open(root=tmp_path / ".shipyard").close()
    return tmp_path


def test_another_interface_without_keys_is_refused_before_serving(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out = cli(capsys, "ui", "--host", "0.0.0.0", "--port", "0")
    assert code == 1
    assert "shipyard ui on 0.0.0.0 would let anyone who can reach it promote models" in out
    assert "--api-keys-file" in out and "Shipyard UI on" not in out


def test_keys_that_cannot_log_in_and_half_a_tls_pair_are_refused(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    keys = home / "keys.txt"
    keys.write_text("predict-only-key-0123456789 role=predict\n")
    code, out = cli(capsys, "ui", "--api-keys-file", str(keys), "--port", "0")
    assert code == 1 and "none of the API keys has role read or admin" in out
    code, out = cli(capsys, "ui", "--tls-certfile", str(keys), "--port", "0")
    assert code == 1 and "give both --tls-certfile and --tls-keyfile" in out
    keys.write_text("short role=admin\n")
    code, out = cli(capsys, "ui", "--api-keys-file", str(keys))
    assert code == 1 and "at least 16 characters" in out and "short" not in out.split(":", 2)[-1]


def test_a_server_url_that_is_not_http_is_refused_before_serving(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out = cli(capsys, "ui", "--server", "ftp://models.example.com", "--port", "0")
    assert code == 1
    assert "--server" in out and "not an http:// or https:// URL" in out
    assert "Shipyard UI on" not in out


def test_a_busy_port_exits_1_before_serving(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        code, out = cli(capsys, "ui", "--port", str(port))
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in out


def test_no_store_is_an_error_naming_where_it_looked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "nothing"))
    code, out = cli(capsys, "ui", "--port", "0")
    assert code == 1 and "no Shipyard store at" in out


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.1", False),
        ("example.org", False),
    ],
)
def test_which_hosts_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.http
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_https_with_keys_logs_in_and_stops_on_sigterm(home: Path) -> None:
    cert, key = self_signed(home, "ui")
    keys = home / "keys.txt"
    keys.write_text(f"# the UI's keys\n{ADMIN_KEY} role=admin\n")
    trust = ssl.create_default_context(cafile=str(cert))
    options = ("--api-keys-file", str(keys), "--tls-certfile", str(cert), "--tls-keyfile", str(key))
    with running_ui(home, *options) as ui:
        base = f"https://127.0.0.1:{ui.port}"
        with httpx.Client(verify=trust, timeout=10, base_url=base) as client:
            wait_healthy(client)
            assert client.get("/runs").headers["location"] == "/login?next=/runs"
            login = client.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
            done = client.post("/login", data={"key": ADMIN_KEY, "csrf": token})
            assert done.status_code == 303
            cookie = done.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
            assert client.get("/runs").status_code == 200
        ui.process.send_signal(signal.SIGTERM)
        assert ui.process.wait(timeout=30) == 0
    assert "Shipyard UI on https://" in ui.output and ADMIN_KEY not in ui.output

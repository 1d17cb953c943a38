"""A real S3-compatible server for the tests: moto's server mode, in a subprocess on a free
loopback port, and a fresh bucket per test with credentials and endpoint in the environment.

Registered as a pytest plugin by ``tests/conftest.py``. Without moto or s3fs the S3 tests
skip, naming what to install; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
START_TIMEOUT_S = 30
#: The dummy credentials the tests put in the environment; tests grep stored data for them.
ACCESS_KEY_ID = "AKIASHIPYARDTEST0001"
SECRET_ACCESS_KEY = f"shipyard-secret-{uuid.uuid4().hex}"
#: Environment variables that could point boto at real credentials or another endpoint.
_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "s3: needs moto's S3 server (skipped without moto[server], fails under CI=true)"
    )


@dataclass(frozen=True)
class S3Bucket:
    """A fresh bucket on the test S3 server.

    Attributes:
        endpoint: the server's URL (also in ``AWS_ENDPOINT_URL`` during the test).
        bucket: the bucket's name.
        root: an artifact root inside it, ``s3://<bucket>/shipyard``.
        secret: the secret access key in the environment, which nothing may store.
    """

    endpoint: str
    bucket: str
    root: str
    secret: str = SECRET_ACCESS_KEY

    def fs(self) -> Any:
        """An s3fs filesystem on the server, with no listing cache (for checking objects)."""
        import s3fs

        return s3fs.S3FileSystem(
            key=ACCESS_KEY_ID,
            secret=SECRET_ACCESS_KEY,
            endpoint_url=self.endpoint,
            use_listings_cache=False,
            skip_instance_cache=True,
        )

    def environ(self) -> dict[str, str]:
        """The environment a subprocess needs to reach the bucket."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def _missing(what: str) -> None:
    reason = f"{what} is not installed: pip install 'shipyard[test]' for the S3 tests"
    if IN_CI:
        pytest.fail(f"{reason}; under CI=true the S3 tests must run", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(process: subprocess.Popen[bytes], endpoint: str) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server running in a subprocess for the whole session."""
    for module in ("moto.server", "s3fs", "boto3"):
        try:
            __import__(module)
        except ImportError:
            _missing(module.split(".")[0] + ("[server]" if module == "moto.server" else ""))
    code = "import sys; from moto.server import main; sys.exit(main())"
    # the server logs every request: to a file, never to a pipe nobody reads (a full pipe
    # blocks its request threads, and the tests hang)
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the server below
    for _ in range(3):  # another process may take the free port before moto binds it
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [sys.executable, "-c", code, "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if _wait_until_up(process, endpoint):
            break
        process.kill()
        process.wait()
    else:
        log.seek(0)
        detail = log.read().decode(errors="replace").strip()[-500:]
        log.close()
        pytest.fail(f"moto's S3 server did not start: {detail}", pytrace=False)
    try:
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A fresh bucket, with dummy credentials and the endpoint in the environment only
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``)."""
    import s3fs

    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    found = S3Bucket(s3_endpoint, f"shipyard-{uuid.uuid4().hex[:12]}", "")
    for name, value in found.environ().items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()  # the store's filesystem reads the new env
    found.fs().mkdir(found.bucket)
    return S3Bucket(s3_endpoint, found.bucket, f"s3://{found.bucket}/shipyard")

"""API keys: hashed, constant-time, 401 before the body is read, probes and docs open."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_serve_app import RECORD, _samples, build_package

from shipyard.errors import ShipyardError
from shipyard.model import ModelPackage
from shipyard.serve import ServeConfig, create_app
from shipyard.serve._auth import digest_key, load_api_key_roles, load_api_keys

KEY = "k-0123456789abcdef"
OTHER = "k-fedcba9876543210"


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    return build_package("multiclass")


@pytest.fixture
def client(package: ModelPackage) -> TestClient:
    config = ServeConfig(api_key_digests=(digest_key(KEY), digest_key(OTHER)))
    return TestClient(create_app(package, config=config))


def test_predict_needs_a_valid_key(client: TestClient) -> None:
    with client:
        missing = client.post("/predict", json=RECORD)
        wrong = client.post("/predict", json=RECORD, headers={"x-api-key": "nope" * 5})
        bearer = client.post("/predict", json=RECORD, headers={"authorization": f"Bearer {KEY}"})
        header = client.post("/predict", json=RECORD, headers={"x-api-key": OTHER})
        samples = _samples_with_key(client)
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["detail"][0]["type"] == "unauthorized"
    assert bearer.status_code == 200 and header.status_code == 200
    assert samples["shipyard_requests_refused_total", (("reason", "unauthorized"),)] == 2


def _samples_with_key(client: TestClient) -> dict:  # type: ignore[type-arg]
    client.headers["x-api-key"] = KEY
    try:
        return _samples(client)
    finally:
        del client.headers["x-api-key"]


def test_probes_and_docs_need_no_key_but_metadata_and_metrics_do(client: TestClient) -> None:
    with client:
        for path in ("/health", "/ready", "/docs", "/openapi.json"):
            assert client.get(path).status_code == 200, path
        for path in ("/metadata", "/metrics"):
            assert client.get(path).status_code == 401, path


def test_a_refused_body_is_never_read(client: TestClient) -> None:
    def body():  # type: ignore[no-untyped-def]
        raise AssertionError("the body of an unauthenticated request was read")
        yield b""

    with client:
        response = client.post("/predict", content=body(), headers={"content-type": "x"})
    assert response.status_code == 401


def test_no_key_is_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with client:
        client.post("/predict", json=RECORD, headers={"x-api-key": KEY})
        client.post("/predict", json=RECORD, headers={"x-api-key": "wrong-key-1234567"})
    assert KEY not in caplog.text and "wrong-key-1234567" not in caplog.text


def test_keys_load_from_a_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# production clients\n{KEY}\n\nsha256:{digest_key(OTHER)}\n")
    digests = load_api_keys(file=path, env_value=f" {KEY} , another-key-0123456")
    assert digests == tuple(
        sorted({digest_key(KEY), digest_key(OTHER), digest_key("another-key-0123456")})
    )
    assert KEY not in repr(digests)
    assert load_api_keys() == ()


def test_short_keys_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("tiny-key\n")
    with pytest.raises(ShipyardError, match=r"keys:1: an API key must be at least 16") as info:
        load_api_keys(file=path)
    assert "tiny-key" not in str(info.value)  # where, never what
    with pytest.raises(ShipyardError, match="cannot read the API keys file"):
        load_api_keys(file=tmp_path / "absent")


PREDICTOR = "k-predict-only-0123"
READER = "k-read-only-456789"


def test_roles_limit_what_a_key_may_do(package: ModelPackage, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{KEY}\n{PREDICTOR} role=predict\n{READER}  role=read\n")
    roles = load_api_key_roles(file=keys)
    assert roles == {
        digest_key(KEY): "admin",
        digest_key(PREDICTOR): "predict",
        digest_key(READER): "read",
    }
    config = ServeConfig(
        api_key_digests=tuple(sorted(roles)),
        api_key_roles={d: r for d, r in roles.items() if r != "admin"},
    )
    with TestClient(create_app(package, config=config)) as client:

        def status(method: str, path: str, key: str, **kw: object) -> int:
            return client.request(method, path, headers={"x-api-key": key}, **kw).status_code

        v2 = "/v2/models/any/infer"  # refused for the role before the name matters
        assert status("POST", "/predict", PREDICTOR, json=RECORD) == 200
        assert status("GET", "/metadata", PREDICTOR) == 403
        assert status("GET", "/metrics", PREDICTOR) == 403
        assert status("POST", "/predict", READER, json=RECORD) == 403
        assert status("POST", v2, READER, json={"inputs": []}) == 403
        assert status("GET", "/metadata", READER) == 200
        assert status("POST", "/predict", KEY, json=RECORD) == 200
        assert status("GET", "/metadata", KEY) == 200
        denied = client.get("/metadata", headers={"x-api-key": PREDICTOR})
        client.headers["x-api-key"] = READER
        samples = _samples(client)
    assert denied.json()["detail"][0]["type"] == "forbidden"
    assert "role 'predict' does not allow GET /metadata" in denied.json()["detail"][0]["msg"]
    assert samples["shipyard_requests_refused_total", (("reason", "forbidden"),)] == 5


def test_a_key_given_twice_keeps_its_widest_role_and_bad_roles_name_the_line(
    tmp_path: Path,
) -> None:
    roles = load_api_key_roles(env_value=f"{PREDICTOR} role=predict,{PREDICTOR}")
    assert roles == {digest_key(PREDICTOR): "admin"}
    keys = tmp_path / "keys"
    keys.write_text(f"{KEY} role=root\n")
    with pytest.raises(ShipyardError, match=r"keys:1: after the key, expected role=predict") as e:
        load_api_key_roles(file=keys)
    assert KEY not in str(e.value)

"""The artifact store on a real S3-compatible server (moto's server mode, started by the tests):
round trips, integrity, encryption, listing and deleting, a whole ``shipyard run`` with its
artifacts on S3 and its metadata on PostgreSQL, and credentials never stored anywhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from palmerpenguins import load_penguins

from cli_runner import cli
from s3_server import ACCESS_KEY_ID, S3Bucket
from shipyard import load_model, serve_app
from shipyard.errors import ArtifactIntegrityError, StoreError
from shipyard.registry import Registry
from shipyard.store import Store, generate_key_text, redact_root

pytestmark = pytest.mark.s3

SPEC = """\
name: penguins
data: {source: {type: csv, path: data/penguins.csv}, target: species}
split: {cv_folds: 2}
models:
  - model: linear
"""


@pytest.fixture
def store(s3_bucket: S3Bucket, tmp_path: Path) -> Iterator[Store]:
    """A SQLite metadata store with its artifacts on S3."""
    with Store.open(root=tmp_path / "sy", artifact_root=s3_bucket.root) as opened:
        yield opened


def _keys(s3_bucket: S3Bucket) -> list[str]:
    prefix = f"{s3_bucket.bucket}/shipyard/"
    return sorted(k.removeprefix(prefix) for k in s3_bucket.fs().find(s3_bucket.bucket))


def _object(s3_bucket: S3Bucket, path: str) -> str:
    return f"{s3_bucket.bucket}/shipyard/{path}"


def test_put_writes_one_object_at_its_final_key_and_get_verifies_it(
    store: Store, s3_bucket: S3Bucket
) -> None:
    data = b"\x00weights\xff" * 1000
    sha = store.artifacts.put("models/m/1/pipeline.joblib", data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert _keys(s3_bucket) == ["models/m/1/pipeline.joblib"]  # no temporary objects
    assert s3_bucket.fs().cat_file(_object(s3_bucket, "models/m/1/pipeline.joblib")) == data
    assert store.artifacts.get("models/m/1/pipeline.joblib") == data
    assert store.artifacts.record("models/m/1/pipeline.joblib").size == len(data)

    store.artifacts.put("models/m/1/pipeline.joblib", b"replaced")
    assert store.artifacts.get("models/m/1/pipeline.joblib") == b"replaced"
    assert _keys(s3_bucket) == ["models/m/1/pipeline.joblib"]


def test_an_object_changed_on_s3_raises_integrity_error(store: Store, s3_bucket: S3Bucket) -> None:
    store.artifacts.put("models/m/1/pipeline.joblib", b"original")
    s3_bucket.fs().pipe_file(_object(s3_bucket, "models/m/1/pipeline.joblib"), b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="refusing to load") as info:
        store.artifacts.get("models/m/1/pipeline.joblib")
    assert s3_bucket.root in str(info.value)


def test_an_object_removed_from_s3_is_reported_missing(store: Store, s3_bucket: S3Bucket) -> None:
    store.artifacts.put("runs/x/report.html", b"<html/>")
    assert store.artifacts.exists("runs/x/report.html")
    s3_bucket.fs().rm_file(_object(s3_bucket, "runs/x/report.html"))
    assert not store.artifacts.exists("runs/x/report.html")
    with pytest.raises(StoreError, match="its file is missing"):
        store.artifacts.get("runs/x/report.html")


def test_list_and_delete(store: Store, s3_bucket: S3Bucket) -> None:
    for path in ("runs/a/one.txt", "runs/a/two.txt", "runs/ab/three.txt"):
        store.artifacts.put(path, path.encode())
    assert [r.path for r in store.artifacts.list("runs/a")] == ["runs/a/one.txt", "runs/a/two.txt"]
    assert store.artifacts.delete("runs/a/one.txt") is True
    assert store.artifacts.delete("runs/a/one.txt") is False
    assert not store.artifacts.exists("runs/a/one.txt")
    assert _keys(s3_bucket) == ["runs/a/two.txt", "runs/ab/three.txt"]
    assert [r.path for r in store.artifacts.list("runs")] == ["runs/a/two.txt", "runs/ab/three.txt"]


def test_encrypted_artifacts_are_ciphertext_on_s3(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    key = generate_key_text()
    plain = b"secret model weights " * 100
    with Store.open(
        root=tmp_path / "sy", artifact_root=s3_bucket.root, encryption_key=key
    ) as store:
        sha = store.artifacts.put("models/m/1/pipeline.joblib", plain)
        stored = s3_bucket.fs().cat_file(_object(s3_bucket, "models/m/1/pipeline.joblib"))
        assert b"secret model weights" not in stored
        assert hashlib.sha256(stored).hexdigest() == sha
        assert store.artifacts.get("models/m/1/pipeline.joblib") == plain


def test_a_missing_bucket_is_a_clear_error_and_is_not_created(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    missing = f"{s3_bucket.bucket}-typo"
    with Store.open(root=tmp_path / "sy", artifact_root=f"s3://{missing}/sy") as store:
        with pytest.raises(StoreError, match=r"cannot write artifact 'a\.txt'") as info:
            store.artifacts.put("a.txt", b"x")
        assert "AWS_ENDPOINT_URL" in str(info.value)
        assert store.artifacts.list() == []  # the row was rolled back
    assert not s3_bucket.fs().exists(missing)


def test_credentials_in_a_root_url_never_show() -> None:
    shown = redact_root("s3://bucket/sy?secret_access_key=abc123&region=eu")
    assert "abc123" not in shown
    assert redact_root("sftp://me:pw123@host/sy") == "sftp://me:***@host/sy"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_bucket: S3Bucket) -> Path:
    """A quick penguins project whose artifacts go to S3 (``SHIPYARD_ARTIFACT_ROOT``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.setenv("SHIPYARD_ARTIFACT_ROOT", s3_bucket.root)
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "data").mkdir()
    load_penguins().to_csv(tmp_path / "data" / "penguins.csv", index=False)
    (tmp_path / "shipyard.yaml").write_text(SPEC)
    return tmp_path


def _text_values(pg_url: str) -> Iterator[tuple[str, str, str]]:
    """Every text or JSON value in every table: (table, column, value)."""
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            for table in inspector.get_table_names():
                for column in inspector.get_columns(table):
                    kind = str(column["type"]).upper()
                    if not any(t in kind for t in ("CHAR", "TEXT", "JSON")):
                        continue
                    query = sa.text(f'SELECT CAST("{column["name"]}" AS TEXT) FROM "{table}"')
                    for (value,) in conn.execute(query):
                        if value is not None:
                            yield table, column["name"], value
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_run_on_postgres_and_s3_registers_a_verified_model_and_stores_no_credentials(
    project: Path,
    pg_url: str,
    s3_bucket: S3Bucket,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    code, out = cli(capsys, "--store", pg_url, "run")
    assert code == 0, out
    assert "shipyard runs report" in out  # the report is on S3: exported, not a local path
    assert not (project / ".shipyard" / "artifacts").exists()

    with Store.open(pg_url, artifact_root=s3_bucket.root) as store:
        record = Registry(store).resolve("models:/penguins")
        keys = _keys(s3_bucket)
        assert keys == sorted(r.path for r in store.artifacts.list())  # objects = rows
        assert any(k.startswith(f"{record.package_path}/") for k in keys)
        for rec in store.artifacts.list():  # every object matches its recorded sha256
            data = s3_bucket.fs().cat_file(_object(s3_bucket, rec.path))
            assert hashlib.sha256(data).hexdigest() == rec.sha256

        package = load_model(record.uri, store=store)
        frame = load_penguins().drop(columns=["species"]).dropna().head(3)
        assert len(package.predict(frame)) == 3
        with TestClient(serve_app(record.uri, store=store)) as client:
            row = json.loads(frame.head(1).to_json(orient="records"))[0]
            response = client.post("/predict", json=row)
            assert response.status_code == 200, response.text

        # corrupt the served package on S3: loading it refuses
        victim = f"{record.package_path}/pipeline.joblib"
        if not store.artifacts.exists(victim):
            victim = store.artifacts.list(record.package_path)[0].path
        s3_bucket.fs().pipe_file(_object(s3_bucket, victim), b"not the model")
        with pytest.raises(ArtifactIntegrityError, match="refusing to load"):
            load_model(record.uri, store=store)
        with pytest.raises(ArtifactIntegrityError):
            serve_app(record.uri, store=store)
        objects = {k: s3_bucket.fs().cat_file(_object(s3_bucket, k)) for k in keys}

    secrets = (s3_bucket.secret, ACCESS_KEY_ID)
    leaks = [(t, c) for t, c, v in _text_values(pg_url) if any(s in v for s in secrets)]
    assert leaks == []
    assert [k for k, data in objects.items() if any(s.encode() in data for s in secrets)] == []
    assert not any(s in out for s in secrets)
    assert not any(s in caplog.text for s in secrets)

"""Encryption at rest: the envelope, the key from the environment, the encrypted artifact store
and the encrypted Parquet prediction log."""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.dummy import DummyClassifier

from shipyard.data import ColumnSchema, Signature
from shipyard.errors import ArtifactIntegrityError, DataError, EncryptionError, StoreError
from shipyard.registry import ModelPackage, Registry
from shipyard.store import (
    ENCRYPTION_KEY_ENV,
    EncryptionKey,
    ParquetSink,
    PredictionEntry,
    Store,
    generate_key_text,
    read_predictions,
    tables,
)
from shipyard.store._crypto import MAGIC, is_sealed, key_from_env, open_envelope, resolve_key

KEY = generate_key_text()
OTHER = generate_key_text()


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENCRYPTION_KEY_ENV, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(root=tmp_path / "sy", encryption_key=KEY) as opened:
        yield opened


def _stored(tmp_path: Path, path: str) -> bytes:
    return (tmp_path / "sy" / "artifacts" / path).read_bytes()


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# --- the envelope -----------------------------------------------------------------------


def test_seal_then_open_round_trips_with_a_fresh_nonce_each_time() -> None:
    key = EncryptionKey.from_text(KEY)
    first, second = key.seal(b"secret rows"), key.seal(b"secret rows")
    assert first != second  # a random nonce per envelope
    assert is_sealed(first) and first.startswith(MAGIC)
    assert b"secret rows" not in first
    assert key.open(first, what="x") == key.open(second, what="x") == b"secret rows"
    assert key.open(key.seal(b""), what="x") == b""


def test_the_key_id_is_stable_public_and_never_the_key() -> None:
    key = EncryptionKey.from_text(KEY)
    assert (
        key.key_id == EncryptionKey.from_text(KEY).key_id != EncryptionKey.from_text(OTHER).key_id
    )
    assert len(key.key_id) == 16
    assert KEY not in repr(key) and key.secret.hex() not in repr(key)


@pytest.mark.parametrize("index", [len(MAGIC) + 1, -1, -20])  # key id, tag, ciphertext
def test_a_changed_byte_fails_authentication_or_names_the_key(index: int) -> None:
    key = EncryptionKey.from_text(KEY)
    envelope = bytearray(key.seal(b"some model bytes, long enough to change"))
    envelope[index] ^= 0x01
    with pytest.raises((ArtifactIntegrityError, EncryptionError)) as info:
        key.open(bytes(envelope), what="pipeline.joblib")
    assert "pipeline.joblib" in str(info.value)


def test_a_changed_ciphertext_byte_is_an_integrity_error() -> None:
    key = EncryptionKey.from_text(KEY)
    envelope = bytearray(key.seal(b"payload"))
    envelope[-1] ^= 0xFF
    with pytest.raises(ArtifactIntegrityError, match="failed authentication"):
        key.open(bytes(envelope), what="notes.txt")


def test_a_wrong_key_names_both_key_ids() -> None:
    writer, reader = EncryptionKey.from_text(KEY), EncryptionKey.from_text(OTHER)
    with pytest.raises(EncryptionError) as info:
        reader.open(writer.seal(b"payload"), what="notes.txt")
    message = str(info.value)
    assert f"encrypted with key id {writer.key_id}" in message
    assert f"{ENCRYPTION_KEY_ENV} has key id {reader.key_id}" in message
    assert KEY not in message and OTHER not in message


def test_a_missing_key_says_which_key_wrote_it() -> None:
    envelope = EncryptionKey.from_text(KEY).seal(b"payload")
    with pytest.raises(EncryptionError, match=f"{ENCRYPTION_KEY_ENV} is not set"):
        open_envelope(envelope, None, what="notes.txt")


def test_plaintext_passes_through_with_or_without_a_key() -> None:
    key = EncryptionKey.from_text(KEY)
    assert open_envelope(b'{"a": 1}', key, what="x") == b'{"a": 1}'
    assert open_envelope(b"PAR1...", None, what="x") == b"PAR1..."


def test_a_truncated_envelope_and_an_unknown_version_are_refused() -> None:
    key = EncryptionKey.from_text(KEY)
    envelope = key.seal(b"payload")
    with pytest.raises(ArtifactIntegrityError, match="truncated"):
        key.open(envelope[: len(MAGIC) + 5], what="x")
    newer = envelope[: len(MAGIC)] + bytes([9]) + envelope[len(MAGIC) + 1 :]
    with pytest.raises(EncryptionError, match="format version 9"):
        key.open(newer, what="x")


# --- the key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["not base64 at all!", base64.urlsafe_b64encode(b"short").decode(), "a" * 60],
)
def test_a_bad_key_text_names_the_variable_and_the_expectation_not_the_text(text: str) -> None:
    with pytest.raises(EncryptionError) as info:
        key_from_env({ENCRYPTION_KEY_ENV: text})
    message = str(info.value)
    assert ENCRYPTION_KEY_ENV in message and "urlsafe base64 of 32" in message
    assert "secrets.token_bytes(32)" in message  # how to make one
    assert text not in message


def test_the_key_comes_from_the_environment_unless_given() -> None:
    assert key_from_env({}) is None
    assert key_from_env({ENCRYPTION_KEY_ENV: "  "}) is None
    from_env = key_from_env({ENCRYPTION_KEY_ENV: f" {KEY}\n"})
    assert from_env is not None and from_env == EncryptionKey.from_text(KEY)
    assert resolve_key(None) is None  # the fixture unset the variable
    given = EncryptionKey.from_text(OTHER)
    assert resolve_key(given) is given
    assert resolve_key(OTHER) == given
    with pytest.raises(EncryptionError, match="the encryption_key argument"):
        resolve_key("nope")
    with pytest.raises(EncryptionError, match="32 bytes"):
        EncryptionKey(b"\x00" * 16)


def test_a_missing_cryptography_library_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = EncryptionKey.from_text(KEY)
    envelope = key.seal(b"payload")
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    for attempt in (
        lambda: key_from_env({ENCRYPTION_KEY_ENV: KEY}),
        lambda: key.seal(b"payload"),
        lambda: open_envelope(envelope, None, what="x"),
        lambda: open_envelope(envelope, key, what="x"),
    ):
        with pytest.raises(EncryptionError, match=r"install shipyard\[crypto\]"):
            attempt()


# --- the artifact store -----------------------------------------------------------------


def test_an_encrypted_artifact_round_trips_and_records_the_stored_bytes(
    store: Store, tmp_path: Path
) -> None:
    data = b"category Adelie, never in clear"
    sha = store.artifacts.put("models/m/signature.json", data)
    stored = _stored(tmp_path, "models/m/signature.json")
    assert stored.startswith(MAGIC) and b"Adelie" not in stored
    rec = store.artifacts.record("models/m/signature.json")
    assert sha == rec.sha256 == hashlib.sha256(stored).hexdigest()
    assert rec.size == len(stored)
    assert store.artifacts.get("models/m/signature.json") == data
    assert store.artifacts.key_id == EncryptionKey.from_text(KEY).key_id


def test_plaintext_artifacts_from_before_encryption_are_still_read(tmp_path: Path) -> None:
    with Store.open(root=tmp_path / "sy") as clear:
        clear.artifacts.put("old.json", b'{"legacy": true}')
        assert clear.artifacts.key_id is None
    with Store.open(root=tmp_path / "sy", encryption_key=KEY) as encrypted:
        assert encrypted.artifacts.get("old.json") == b'{"legacy": true}'
        encrypted.artifacts.put("new.json", b'{"new": true}')
    assert _stored(tmp_path, "old.json") == b'{"legacy": true}'
    assert _stored(tmp_path, "new.json").startswith(MAGIC)


def test_reading_without_the_key_or_with_another_key_is_a_clear_error(
    store: Store, tmp_path: Path
) -> None:
    store.artifacts.put("a.bin", b"payload")
    key_id = EncryptionKey.from_text(KEY).key_id
    with Store.open(root=tmp_path / "sy") as keyless, pytest.raises(EncryptionError) as info:
        keyless.artifacts.get("a.bin")
    assert f"artifact 'a.bin' is encrypted (key id {key_id})" in str(info.value)
    assert ENCRYPTION_KEY_ENV in str(info.value)
    other_id = EncryptionKey.from_text(OTHER).key_id
    with (
        Store.open(root=tmp_path / "sy", encryption_key=OTHER) as other,
        pytest.raises(EncryptionError) as info,
    ):
        other.artifacts.get("a.bin")
    assert f"encrypted with key id {key_id}" in str(info.value)
    assert f"has key id {other_id}" in str(info.value)


def test_the_sha256_is_checked_before_anything_is_decrypted(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.artifacts.put("a.bin", b"payload")
    target = tmp_path / "sy" / "artifacts" / "a.bin"
    changed = bytearray(target.read_bytes())
    changed[-1] ^= 0xFF
    target.write_bytes(bytes(changed))

    def never(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("decrypted before the sha256 was verified")

    with monkeypatch.context() as patch:
        patch.setattr(EncryptionKey, "open", never)
        with pytest.raises(ArtifactIntegrityError, match="has sha256"):
            store.artifacts.get("a.bin")
    # a file changed together with its recorded sha256 still fails authentication
    with store.begin() as conn:
        conn.execute(
            sa.update(tables.artifacts)
            .where(tables.artifacts.c.path == "a.bin")
            .values(sha256=hashlib.sha256(bytes(changed)).hexdigest())
        )
    with pytest.raises(ArtifactIntegrityError, match="failed authentication"):
        store.artifacts.get("a.bin")


def test_a_failed_encrypted_put_leaves_no_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a run"):
        store.artifacts.put("runs/x/a.bin", b"payload", run_id="no-such-run")
    assert _files(tmp_path / "sy" / "artifacts") == []


def test_the_key_comes_from_the_environment_and_a_bad_one_fails_before_the_store_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, KEY)
    with Store.from_env(None, root=tmp_path / "sy") as opened:
        opened.artifacts.put("a.bin", b"payload")
    assert _stored(tmp_path, "a.bin").startswith(MAGIC)
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, "too-short")
    with pytest.raises(EncryptionError, match=ENCRYPTION_KEY_ENV):
        Store.open(root=tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_an_encrypted_model_package_loads_and_predicts(store: Store, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"bill_mm": [39.1, 46.5, 49.9, 38.6], "species": ["Adelie"] * 2 + ["Gentoo"] * 2}
    )
    signature = Signature(
        inputs=(ColumnSchema(name="bill_mm", kind="number", dtype="float64", nullable=False),),
        classes=("Adelie", "Gentoo"),
    )
    model = DummyClassifier(strategy="prior").fit(frame[["bill_mm"]], frame["species"])
    package = ModelPackage(pipeline=model, signature=signature, task="binary", metadata={})
    registry = Registry(store)
    registry.register("penguins", package)
    root = tmp_path / "sy" / "artifacts"
    stored = [(root / name).read_bytes() for name in _files(root)]
    assert stored and all(data.startswith(MAGIC) for data in stored)
    assert not any(b"Adelie" in data or b"bill_mm" in data for data in stored)
    loaded = registry.load("models:/penguins/1")
    assert list(loaded.predict(frame[["bill_mm"]]).labels) == ["Adelie"] * 4


# --- the Parquet prediction log ---------------------------------------------------------

DAY = 1_714_564_800.0  # 2024-05-01T12:00Z


def _entry(request_id: str, island: str, at: float = DAY) -> PredictionEntry:
    return PredictionEntry(
        request_id=request_id,
        ts=at,
        model_name="penguins",
        model_version="1",
        inputs=[{"island": island, "bill_length_mm": 40.5}],
        outputs=[{"prediction": "Adelie", "probabilities": {"Adelie": 0.75, "Gentoo": 0.25}}],
        latency_ms=2.5,
    )


def _log(root: Path, *entries: PredictionEntry, key: str | None = None) -> list[Path]:
    sink = ParquetSink(root, encryption_key=key)
    sink.write(sink.encode(entries))
    return sorted(root.rglob("part-*.parquet"))


def test_log_files_are_encrypted_whole_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _log(tmp_path, _entry("r1", "Torgersen"), _entry("r2", "Biscoe"), key=KEY)
    assert len(files) == 1
    data = files[0].read_bytes()
    assert data.startswith(MAGIC)
    assert b"Torgersen" not in data and b"bill_length_mm" not in data
    assert _files(tmp_path) == [files[0].relative_to(tmp_path).as_posix()]  # no temporary file
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, KEY)
    frame = read_predictions(tmp_path, model="penguins")
    assert frame["request_id"].tolist() == ["r1", "r2"]
    assert frame["input.island"].tolist() == ["Torgersen", "Biscoe"]
    assert frame["proba.Adelie"].tolist() == [0.75, 0.75]


def test_a_window_mixing_clear_and_encrypted_files_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _log(tmp_path, _entry("old", "Dream", at=DAY))
    _log(tmp_path, _entry("new", "Biscoe", at=DAY + 60), key=KEY)
    _log(tmp_path, _entry("later", "Biscoe", at=DAY + 86_400), key=KEY)
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, KEY)
    frame = read_predictions(tmp_path, model="penguins", since="2024-05-01", until="2024-05-02")
    assert frame["request_id"].tolist() == ["old", "new"]


def test_an_encrypted_log_without_the_key_or_with_another_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _log(tmp_path, _entry("r1", "Torgersen"), key=KEY)
    with pytest.raises(EncryptionError, match=f"{ENCRYPTION_KEY_ENV} is not set"):
        read_predictions(tmp_path, model="penguins")
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, OTHER)
    with pytest.raises(EncryptionError, match="encrypted with key id") as info:
        read_predictions(tmp_path, model="penguins")
    assert "the prediction log file" in str(info.value)


def test_a_changed_encrypted_log_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (path,) = _log(tmp_path, _entry("r1", "Torgersen"), key=KEY)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, KEY)
    with pytest.raises(ArtifactIntegrityError, match="failed authentication"):
        read_predictions(tmp_path, model="penguins")


def test_an_unopenable_log_file_is_a_data_error(tmp_path: Path) -> None:
    (path,) = _log(tmp_path, _entry("r1", "Torgersen"))
    path.unlink()
    path.mkdir()  # a folder where a file should be: it cannot be opened
    with pytest.raises(DataError, match="cannot read the prediction log file"):
        read_predictions(tmp_path, model="penguins")

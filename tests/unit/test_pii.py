"""PII columns: the keyed hash, the policy, suggestions, the spec, training and serving."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from test_serve_app import RECORD, build_package

from shipyard.data import PiiKey, PiiPolicy, suggest_pii
from shipyard.errors import DataError, SpecError
from shipyard.model import ModelPackage
from shipyard.pipeline import inspect_data, predict_file
from shipyard.serve import ServeConfig, create_app
from shipyard.spec import ProjectSpec, load_spec
from shipyard.store import read_predictions

KEY = "a-key-long-enough-for-tests"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> PiiKey:
    monkeypatch.setenv("SHIPYARD_PII_KEY", KEY)
    return PiiKey(KEY)


# --- the keyed hash and the policy ----------------------------------------------------------


def test_the_hash_is_keyed_stable_and_normalised() -> None:
    one, other = PiiKey(KEY), PiiKey(KEY + "!")
    assert one.hash("C-42") == PiiKey(KEY).hash(" C-42 ") != other.hash("C-42")
    assert one.hash(42) == one.hash(42.0) == one.hash("42") == one.hash(np.int64(42))
    assert one.hash(None) is one.hash(float("nan")) is one.hash(pd.NA) is None
    assert one.hash("x").startswith("pii:") and len(one.hash("x") or "") == 36
    assert one.key_id != other.key_id and KEY not in repr(one)


def test_a_short_key_or_no_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="at least 16 characters") as caught:
        PiiKey("short-secret")
    assert "short-secret" not in str(caught.value)
    monkeypatch.delenv("SHIPYARD_PII_KEY", raising=False)
    assert PiiKey.from_env() is None
    policy = PiiPolicy({"id": "hash"})
    with pytest.raises(DataError, match="set SHIPYARD_PII_KEY"):
        policy.protect_frame(pd.DataFrame({"id": [1]}), where="here")
    assert policy.index(pd.DataFrame({"id": [1]})) is None


def test_the_policy_drops_hashes_and_indexes() -> None:
    key = PiiKey(KEY)
    policy = PiiPolicy({"email": "drop", "id": "hash", "absent": "drop"}, key)
    frame = pd.DataFrame({"email": ["a@b.co", None], "id": [7, 7], "x": [1.0, 2.0]})
    out = policy.protect_frame(frame, where="here")
    assert list(out.columns) == ["id", "x"]
    assert out["id"].tolist() == [key.hash(7)] * 2
    index = policy.index(frame)
    assert index is not None
    assert sorted(map(tuple, index.to_numpy().tolist())) == [
        ("email", key.hash("a@b.co")),
        ("id", key.hash(7)),
    ]
    record = {"email": "a@b.co", "id": 7, "x": 1.0}
    policy.protector("here")(record)
    assert record == {"id": key.hash(7), "x": 1.0}
    assert PiiPolicy({"x": "drop"}).protect_frame(pd.DataFrame({"y": [1]}), where="").shape == (
        1,
        1,
    )
    empty = PiiPolicy({"gone": "drop"}, key).index(pd.DataFrame({"y": [1]}))
    assert empty is not None and empty.empty


# --- suggestions -----------------------------------------------------------------------------


def test_columns_that_look_personal_are_suggested_with_a_reason_and_no_value() -> None:
    n = 20
    frame = pd.DataFrame(
        {
            "contact": [f"user{i}@mail.example.org" for i in range(n)],
            "tel": [f"+44 20 7946 {i:04d}" for i in range(n)],
            "card": ["4111 1111 1111 1111"] * n,
            "account": ["DE89370400440532013000"] * n,
            "tax": [f"123-45-{i:04d}" for i in range(n)],
            "customer_name": ["Ann Lee"] * n,
            "passport_no": list(range(n)),
            "day": ["2024-01-05"] * n,  # dates, codes and amounts are not personal
            "code": ["0012345"] * n,
            "amount": np.arange(n, dtype=float),
            "species_name": ["Adelie"] * n,
            "empty": [None] * n,
        }
    )
    found = {s.column: s.reason for s in suggest_pii(frame)}
    assert set(found) == {
        "contact",
        "tel",
        "card",
        "account",
        "tax",
        "customer_name",
        "passport_no",
    }
    assert "e-mail" in found["contact"] and "20 of 20" in found["contact"]
    assert "card" in found["card"] and "phone" in found["tel"] and "IBAN" in found["account"]
    assert "names" in found["customer_name"] and "id document" in found["passport_no"]
    assert all("@" not in r and "Ann" not in r for r in found.values())
    assert [s.column for s in suggest_pii(frame, {"contact": "drop", "tel": "hash"})][:1] == [
        "card"
    ]
    large = pd.DataFrame({"email": [f"u{i}@x.io" for i in range(5_000)]})
    assert "1000 of 1000" in suggest_pii(large)[0].reason  # a sample, not every row


# --- the project file and training ----------------------------------------------------------


def _spec(tmp_path: Path, features: str) -> ProjectSpec:
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        "name: demo\ndata:\n  source: {type: csv, path: d.csv}\n  target: label\n" + features
    )
    return load_spec(path)


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "email": [f"p{i}@example.com" for i in range(n)],
            "customer_id": [f"C{i}" for i in range(n)],
            "label": rng.choice(["a", "b"], n),
        }
    )


def test_the_spec_takes_a_list_or_a_mapping(tmp_path: Path) -> None:
    assert _spec(tmp_path, "features: {pii: [email]}\n").features.pii == {"email": "drop"}
    spec = _spec(tmp_path, "features:\n  pii: {email: drop, customer_id: hash}\n")
    assert spec.features.pii == {"email": "drop", "customer_id": "hash"}
    for bad, says in (
        ("features: {pii: [1, 2]}\n", "list of column names"),
        ("features: {pii: {email: blur}}\n", "drop"),
        ("features: {pii: [email], include: [email, x]}\n", "never a model input"),
        ("features: {pii: [email], types: {email: category}}\n", "features.types"),
        ("features: {pii: [label]}\n", "target 'label' is declared PII"),
    ):
        with pytest.raises(SpecError, match=says):
            _spec(tmp_path, bad)


def test_training_never_sees_pii_in_clear_and_suggests_the_undeclared(
    tmp_path: Path, key: PiiKey
) -> None:
    spec = _spec(tmp_path, "features: {pii: {customer_id: hash}}\n")
    inspection = inspect_data(spec, _frame())
    assert "email" in inspection.frame  # not declared: kept, and suggested
    assert inspection.frame["customer_id"].str.startswith("pii:").all()
    assert inspection.signature is not None
    names = inspection.signature.input_names
    assert "x" in names and "customer_id" not in names
    pii = [r for r in inspection.report.warnings if r.check == "pii"]
    assert [r.column for r in pii] == ["email"]
    assert "features.pii" in pii[0].message and "@" not in pii[0].message


def test_a_declared_pii_column_must_exist_and_hashing_needs_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, "features: {pii: [e_mail]}\n")
    with pytest.raises(DataError, match=r"PII column\(s\) \['e_mail'\] are not in the data"):
        inspect_data(spec, _frame())
    monkeypatch.delenv("SHIPYARD_PII_KEY", raising=False)
    spec = _spec(tmp_path, "features: {pii: {customer_id: hash}}\n")
    with pytest.raises(DataError, match="set SHIPYARD_PII_KEY"):
        inspect_data(spec, _frame())


# --- serving and batch prediction ------------------------------------------------------------


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    package = build_package("multiclass")
    meta = {**package.metadata, "pii": {"email": "drop", "owner": "hash"}}
    return dataclasses.replace(package, metadata={**meta, "pii_key_id": PiiKey(KEY).key_id})


def test_the_server_takes_pii_fields_and_logs_only_their_hash(
    package: ModelPackage, key: PiiKey, tmp_path: Path
) -> None:
    config = ServeConfig(prediction_log=str(tmp_path / "log"), extra_fields="forbid")
    body = {**RECORD, "email": "ann@example.com", "owner": "O-17"}
    with TestClient(create_app(package, config=config)) as client:
        assert client.post("/predict", json=body).status_code == 200
        assert client.post("/predict", json=[RECORD]).status_code == 200  # both optional
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        fields = schema["PenguinsMulticlassRecord"]["properties"]
        assert "hash" in fields["owner"]["description"]
        refused = client.post("/predict", json={**body, "bill_length_mm": "long"})
        assert refused.status_code == 422 and "ann@example.com" not in refused.text
    logged = read_predictions(tmp_path / "log", model="penguins-multiclass")
    assert "input.email" not in logged
    owners = [v if isinstance(v, str) else None for v in logged["input.owner"]]
    assert owners == [key.hash("O-17"), None]


def test_the_server_refuses_to_start_without_the_training_key(
    package: ModelPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPYARD_PII_KEY", raising=False)
    with pytest.raises(DataError, match="set SHIPYARD_PII_KEY"):
        create_app(package)
    monkeypatch.setenv("SHIPYARD_PII_KEY", KEY + "-other")
    with pytest.raises(DataError, match="key id") as caught:
        create_app(package)
    assert KEY not in str(caught.value)


def test_batch_prediction_writes_pii_hashed_or_not_at_all(
    package: ModelPackage, key: PiiKey, tmp_path: Path
) -> None:
    rows = pd.DataFrame([{**RECORD, "email": "ann@example.com", "owner": "O-17"}] * 3)
    rows.to_csv(tmp_path / "in.csv", index=False)
    assert predict_file(package, tmp_path / "in.csv", tmp_path / "out.csv") == 3
    out = pd.read_csv(tmp_path / "out.csv")
    assert "email" not in out and out["owner"].tolist() == [key.hash("O-17")] * 3
    assert b"ann@example.com" not in (tmp_path / "out.csv").read_bytes()

"""Request models generated from a Signature, and the body parser's error reports."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shipyard.data import ColumnSchema, Signature
from shipyard.serve import build_record_model, example_record
from shipyard.serve._schema import (
    InvalidRequestError,
    RecordParser,
    build_response_models,
    model_class_name,
)


def _col(name: str, kind: Any, **kw: Any) -> ColumnSchema:
    return ColumnSchema(name=name, kind=kind, dtype="x", nullable=True, **kw)


SIG = Signature(
    inputs=(
        _col("size", "number", minimum=1.0, maximum=4.0),
        _col("count", "integer", minimum=0.0, maximum=9.0),
        _col("flag", "boolean"),
        _col("colour", "category", categories=("red", "blue")),
        _col("note", "string"),
        _col("when", "datetime"),
        _col("bill length (mm)", "number"),
        _col("model_config", "number"),
        _col("class", "category", categories=("a",)),
    )
)
GOOD: dict[str, Any] = {
    "size": 2.5,
    "count": 3,
    "flag": True,
    "colour": "red",
    "note": "hi",
    "when": "2024-05-01T12:00:00",
    "bill length (mm)": 40.0,
    "model_config": 1.0,
    "class": "a",
}


@pytest.fixture(scope="module")
def model() -> Any:
    return build_record_model(SIG, name="ThingRecord")


def test_valid_record_dumps_by_column_name(model: Any) -> None:
    dumped = model.model_validate(GOOD).model_dump(by_alias=True)
    assert list(dumped) == SIG.input_names
    assert dumped["when"] == datetime(2024, 5, 1, 12)
    assert dumped["bill length (mm)"] == 40.0
    assert dumped["model_config"] == 1.0


def test_all_fields_nullable_but_required(model: Any) -> None:
    nulls = dict.fromkeys(GOOD)
    assert model.model_validate(nulls).model_dump(by_alias=True) == nulls
    with pytest.raises(ValidationError) as info:
        model.model_validate({k: v for k, v in GOOD.items() if k != "note"})
    assert info.value.errors()[0]["loc"] == ("note",)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", "2.5"),
        ("size", True),
        ("count", 2.5),
        ("count", "3"),
        ("flag", "yes"),
        ("flag", 1),
        ("colour", "green"),
        ("note", 5),
        ("when", "not a date"),
    ],
)
def test_wrong_values_refused(model: Any, field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(json.dumps({**GOOD, field: value}))
    assert info.value.errors()[0]["loc"] == (field,)


def test_integer_accepted_as_number(model: Any) -> None:
    assert model.model_validate({**GOOD, "size": 3}).model_dump(by_alias=True)["size"] == 3.0


def test_extra_ignore(model: Any) -> None:
    lax = build_record_model(SIG, name="Lax", extra="ignore")
    seen: list[list[str]] = []
    parser = RecordParser(lax, max_records=10, on_ignored=seen.append)
    records, _ = parser.parse(json.dumps([{**GOOD, "other": 1}, GOOD]).encode())
    assert "other" not in records[0] and records[0] == records[1]
    assert seen == [["other"]]  # counted once, for the one record that had it
    with pytest.raises(ValidationError):
        model.model_validate({**GOOD, "other": 1})


def test_json_schema(model: Any) -> None:
    schema = model.model_json_schema()
    props = schema["properties"]
    assert schema["required"] == SIG.input_names
    assert props["colour"]["anyOf"][0]["enum"] == ["red", "blue"]
    assert props["when"]["anyOf"][0]["format"] == "date-time"
    assert props["flag"]["anyOf"][0]["type"] == "boolean"
    assert props["bill length (mm)"]["title"] == "bill length (mm)"
    assert "observed range [1, 4]" in props["size"]["description"]
    assert schema["example"] == example_record(SIG)


def test_example_record_uses_domain() -> None:
    ex = example_record(SIG)
    assert ex["size"] == 2.5
    assert ex["count"] == 4  # round(4.5) in banker's rounding
    assert ex["colour"] == "red"
    assert ex["flag"] is False
    assert datetime.fromisoformat(ex["when"])


def test_model_class_name() -> None:
    assert model_class_name("penguin-species") == "PenguinSpecies"
    assert model_class_name("3d model") == "Model3dModel"
    assert model_class_name(None) == "Model"


def test_response_models() -> None:
    sig = Signature(inputs=SIG.inputs, classes=("no", "yes"))
    single, batch = build_response_models(sig, prefix="T", is_classifier=True)
    assert set(single.model_fields) == {"prediction", "probabilities", "prediction_id", "model"}
    assert set(batch.model_fields) == {"predictions", "model"}
    reg_single, _ = build_response_models(SIG, prefix="R", is_classifier=False)
    assert set(reg_single.model_fields) == {"prediction", "prediction_id", "model"}


def test_parser_one_and_many(model: Any) -> None:
    parser = RecordParser(model, max_records=3)
    records, is_batch = parser.parse(json.dumps(GOOD).encode())
    assert not is_batch
    assert records[0]["colour"] == "red"
    records, is_batch = parser.parse(json.dumps([GOOD, GOOD]).encode())
    assert is_batch
    assert len(records) == 2


def test_parser_reports_every_problem(model: Any) -> None:
    parser = RecordParser(model, max_records=3)
    bad = [GOOD, {**GOOD, "size": "x", "extra": 1}]
    with pytest.raises(InvalidRequestError) as info:
        parser.parse(json.dumps(bad).encode())
    detail = info.value.detail
    assert info.value.status_code == 422
    assert {(d["record"], d["field"]) for d in detail} == {(1, "size"), (1, "extra")}
    assert "record 1" in str(info.value)


def test_parser_too_many_is_413(model: Any) -> None:
    parser = RecordParser(model, max_records=3)
    with pytest.raises(InvalidRequestError) as info:
        parser.parse(json.dumps([GOOD] * 4).encode())
    assert info.value.status_code == 413
    assert info.value.detail[0]["input"] is None


def test_numeric_categories_accept_numbers_as_training_text() -> None:
    sig = Signature(
        inputs=(
            ColumnSchema(
                name="year",
                kind="category",
                dtype="int64",
                nullable=False,
                categories=("2007", "2008"),
            ),
        )
    )
    model = build_record_model(sig, name="Years")
    assert model.model_validate({"year": 2007}).model_dump()["year"] == "2007"
    assert model.model_validate({"year": 2008.0}).model_dump()["year"] == "2008"
    assert model.model_validate({"year": "2007"}).model_dump()["year"] == "2007"
    assert model.model_validate({"year": None}).model_dump()["year"] is None
    with pytest.raises(ValidationError):
        model.model_validate({"year": 2009})


def test_is_finite_number() -> None:
    from shipyard.serve._schema import is_finite_number

    finite = [0, -3, True, 1.5, 1e308, 10**308, -(10**308), "text", None]
    assert all(is_finite_number(v) for v in finite)
    assert not any(is_finite_number(v) for v in (float("nan"), float("inf"), -1e999, 10**309))

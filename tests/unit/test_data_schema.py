"""infer_schema, infer_task and build_signature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.data import build_signature, infer_schema, infer_task
from shipyard.errors import DataError
from shipyard.spec._loader import load_spec
from shipyard.spec._models import ProjectSpec


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "flag": rng.random(n) > 0.5,
            "count": rng.integers(0, 9, n),
            "price": rng.normal(10, 2, n),
            "whole": np.arange(n, dtype="float64"),
            "when": pd.Series(pd.date_range("2024-01-01", periods=n).astype(str), dtype="str"),
            "colour": pd.Series(rng.choice(["red", "blue", "green"], n), dtype="str"),
            "name": pd.Series([f"person {i}" for i in range(n)], dtype="str"),
            "cat": pd.Categorical(rng.choice(["x", "y"], n)),
            "empty": [None] * n,
        }
    )


def test_kinds() -> None:
    schema = infer_schema(_frame())
    kinds = {name: col.kind for name, col in schema.items()}
    assert kinds == {
        "flag": "boolean",
        "count": "integer",
        "price": "number",
        "whole": "number",  # a float column stays a number even when whole-valued
        "when": "datetime",
        "colour": "category",
        "name": "string",  # identifier-like: every value distinct
        "cat": "category",
        "empty": "string",
    }


def test_domains() -> None:
    df = _frame()
    df.loc[3, "price"] = np.nan
    schema = infer_schema(df)
    assert schema["price"].nullable and not schema["count"].nullable
    assert schema["price"].minimum == pytest.approx(df["price"].min())
    assert schema["count"].maximum == float(df["count"].max())
    assert schema["flag"].minimum == 0.0 and schema["flag"].maximum == 1.0
    assert schema["colour"].categories == ("blue", "green", "red")
    assert schema["empty"].nullable and schema["empty"].minimum is None
    assert schema["colour"].dtype == "str"


def test_max_categories_and_overrides() -> None:
    df = _frame()
    assert infer_schema(df, max_categories=2)["colour"].kind == "string"
    schema = infer_schema(df, overrides={"count": "category", "colour": "string"})
    assert schema["count"].kind == "category"
    codes = sorted({str(v) for v in df["count"]}, key=int)
    assert schema["count"].categories == tuple(codes)  # numeric labels sort numerically
    assert schema["colour"].kind == "string"


def test_impossible_override_names_rows() -> None:
    with pytest.raises(DataError, match=r"column 'colour' cannot be read as 'number'.*rows \[1"):
        infer_schema(_frame(), overrides={"colour": "number"})
    with pytest.raises(DataError, match="did you mean 'colour'"):
        infer_schema(_frame(), overrides={"colur": "category"})


def test_empty_frame_and_object_columns() -> None:
    assert infer_schema(pd.DataFrame()) == {}
    df = pd.DataFrame({"b": [True, None, False], "n": pd.Series([1, 2.5, None], dtype=object)})
    schema = infer_schema(df)
    assert schema["b"].kind == "boolean" and schema["b"].nullable
    assert schema["n"].kind == "number" and schema["n"].maximum == 2.5


def test_text_that_is_not_dates_stays_text() -> None:
    df = pd.DataFrame({"code": ["A-1", "B-2", "A-1", "B-2"]})
    assert infer_schema(df)["code"].kind == "category"


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["a", "b", "a"], "binary"),
        (["a", "b", "c", None], "multiclass"),
        ([True, False, True], "binary"),
        ([0, 1, 1, 0], "binary"),
        ([1.5, 2.25, 3.0, 4.0], "regression"),
        ([1, 2, 3, 1, 2, 3, 1, 2], "multiclass"),
        (list(range(100)), "regression"),
        ([1.0, 2.0, 3.0, 1.0, 2.0, 3.0], "multiclass"),
    ],
)
def test_infer_task(values: list[object], task: str) -> None:
    assert infer_task(pd.Series(values, name="y")) == task


def test_infer_task_needs_two_values() -> None:
    with pytest.raises(DataError, match="'y' has 1 distinct"):
        infer_task(pd.Series([1, 1, None], name="y"))
    with pytest.raises(DataError, match="has 0 distinct"):
        infer_task(pd.Series([None, None], name="y", dtype=object))


def _spec(tmp_path: Path, features: str = "", target: str = "colour") -> ProjectSpec:
    path = tmp_path / "shipyard.yaml"
    text = (
        "name: demo\n"
        "data:\n"
        "  source: {type: csv, path: data.csv}\n"
        f"  target: {target}\n"
        f"{features}"
    )
    path.write_text(text)
    return load_spec(path)


def test_build_signature_defaults(tmp_path: Path) -> None:
    df = _frame()
    sig = build_signature(df, _spec(tmp_path), "multiclass")
    free_text = {"name", "empty"}  # left out: the feature pipeline does not use free text
    assert sig.input_names == [c for c in df.columns if c != "colour" and c not in free_text]
    assert sig.target is not None and sig.target.name == "colour"
    assert sig.classes == ("blue", "green", "red")


def test_build_signature_refuses_only_free_text(tmp_path: Path) -> None:
    df = pd.DataFrame({"note": [f"text {i}" for i in range(60)], "colour": ["a", "b"] * 30})
    with pytest.raises(DataError, match=r"every input column is free text \(\['note'\]\)"):
        build_signature(df, _spec(tmp_path), "binary")


def test_build_signature_include_exclude_types(tmp_path: Path) -> None:
    features = (
        "features:\n"
        "  include: [price, count, flag]\n"
        "  exclude: [flag]\n"
        "  types: {count: category}\n"
    )
    sig = build_signature(_frame(), _spec(tmp_path, features), "multiclass")
    assert sig.input_names == ["count", "price"]  # the data's column order
    assert sig.column("count").kind == "category"


def test_build_signature_regression_has_no_classes(tmp_path: Path) -> None:
    sig = build_signature(_frame(), _spec(tmp_path, target="price"), "regression")
    assert sig.classes is None


def test_build_signature_unknown_names_point_at_the_spec(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"shipyard.yaml:4 \(data.target\).*did you mean 'colour'"):
        build_signature(_frame(), _spec(tmp_path, target="colur"), "multiclass")
    features = "features:\n  exclude: [price, nmae]\n"
    with pytest.raises(DataError, match=r"'nmae' \(.*shipyard.yaml:6.*did you mean 'name'"):
        build_signature(_frame(), _spec(tmp_path, features), "multiclass")


def test_build_signature_task_must_fit_the_classes(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"task 'binary'.*3 class"):
        build_signature(_frame(), _spec(tmp_path), "binary")


def test_build_signature_needs_inputs(tmp_path: Path) -> None:
    df = _frame()[["colour", "price"]]
    with pytest.raises(DataError, match="no input columns"):
        build_signature(df, _spec(tmp_path, "features:\n  exclude: [price]\n"), "multiclass")


def test_a_single_class_is_not_answered_with_the_task_the_user_set(tmp_path: Path) -> None:
    df = _frame()
    df["colour"] = "red"
    for task in ("multiclass", "binary"):
        spec = _spec(tmp_path, f"task: {task}\n")
        with pytest.raises(DataError) as info:
            build_signature(df, spec, task)
        message = str(info.value)
        assert "the target 'colour' has a single class 'red'" in message
        assert "a classifier needs at least two" in message and "filter" in message
        assert "set task" not in message


def test_a_class_count_that_does_not_fit_the_task_names_the_other_task(tmp_path: Path) -> None:
    three = _frame()
    with pytest.raises(
        DataError, match=r"task 'binary' \(.*shipyard.yaml:5 \(task\)\).*set task to multiclass"
    ):
        build_signature(three, _spec(tmp_path, "task: binary\n"), "binary")
    two = three[three["colour"] != "green"].reset_index(drop=True)
    with pytest.raises(DataError, match=r"task 'multiclass' .*2 class.*set task to binary"):
        build_signature(two, _spec(tmp_path, "task: multiclass\n"), "multiclass")


def test_code_like_string_columns_stay_inputs_and_free_text_and_ids_do_not(
    tmp_path: Path,
) -> None:
    """Short repeated tokens with too many values for a category (a country, an agent's
    number) stay inputs, for the features to target-encode; sentences and ids are left out."""
    n = 600
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "country": [f"C{i:02d}" for i in rng.integers(0, 80, n)],  # 80 codes, repeated
            "note": [f"a longer note with words {i % 90}" for i in range(n)],  # sentences
            "ticket": [f"T{i:05d}" for i in range(n)],  # an identifier: every value distinct
            "colour": ["red", "blue"] * (n // 2),
        }
    )
    sig = build_signature(df, _spec(tmp_path), "binary")
    assert sig.input_names == ["country"]
    assert sig.column("country").kind == "string"

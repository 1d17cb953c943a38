"""coerce_frame: canonical dtypes, precise PredictionErrors, and the infer->coerce round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from shipyard.data import ColumnSchema, Signature, coerce_frame, infer_schema
from shipyard.errors import PredictionError


def _sig(*cols: tuple[str, str], categories: tuple[str, ...] | None = None) -> Signature:
    return Signature(
        inputs=tuple(
            ColumnSchema(
                name=name,
                kind=kind,  # type: ignore[arg-type]
                dtype="object",
                nullable=True,
                categories=categories if kind == "category" else None,
            )
            for name, kind in cols
        )
    )


SIG = _sig(
    ("num", "number"),
    ("int", "integer"),
    ("cat", "category"),
    ("flag", "boolean"),
    ("when", "datetime"),
    ("text", "string"),
    categories=("2007", "a", "b"),
)


def _records(n: int) -> pd.DataFrame:
    row = {
        "extra": 1,
        "num": "1.5",
        "int": 3,
        "cat": 2007.0,
        "flag": "Yes",
        "when": "2024-01-02 10:00",
        "text": "hello",
    }
    return pd.DataFrame([row] * n)


@pytest.mark.parametrize("n_rows", [1, 300])  # the per-request path and the dataset path
def test_canonical_dtypes_and_order(n_rows: int) -> None:
    out = coerce_frame(_records(n_rows), SIG)
    assert list(out.columns) == SIG.input_names
    assert [str(t) for t in out.dtypes] == [
        "float64",
        "float64",
        "object",
        "float64",
        "datetime64[ns]",
        "object",
    ]
    first = out.iloc[0].tolist()
    assert first == [1.5, 3.0, "2007", 1.0, pd.Timestamp("2024-01-02 10:00"), "hello"]


@pytest.mark.parametrize("n_rows", [1, 300])
def test_missing_values_become_nan(n_rows: int) -> None:
    frame = pd.DataFrame(
        {
            "num": [" "] * n_rows,
            "int": [None] * n_rows,
            "cat": [None] * n_rows,
            "flag": [""] * n_rows,
            "when": [None] * n_rows,
            "text": [np.nan] * n_rows,
        }
    )
    out = coerce_frame(frame, SIG)
    assert out.isna().all().all()
    assert out["cat"].dtype == object and out["text"].dtype == object


@pytest.mark.parametrize("n_rows", [1, 300])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, 1.0), ("false", 0.0), ("NO", 0.0), (" y ", 1.0), (1, 1.0), (0.0, 0.0), ("1", 1.0)],
)
def test_boolean_spellings(raw: object, expected: float, n_rows: int) -> None:
    sig = _sig(("flag", "boolean"))
    out = coerce_frame(pd.DataFrame({"flag": [raw] * n_rows}), sig)
    assert out["flag"].tolist() == [expected] * n_rows


def test_text_rule_for_numbers_in_category_columns() -> None:
    sig = _sig(("cat", "category"))
    frame = pd.DataFrame({"cat": pd.Series([2007.0, 1.5, None, 3.0])})
    assert coerce_frame(frame, sig)["cat"].tolist()[:2] == ["2007", "1.5"]
    ints = coerce_frame(pd.DataFrame({"cat": [2007, 12]}), sig)
    assert ints["cat"].tolist() == ["2007", "12"]
    bools = coerce_frame(pd.DataFrame({"cat": [True, False]}), sig)
    assert bools["cat"].tolist() == ["True", "False"]


def test_categorical_and_string_dtypes() -> None:
    sig = _sig(("cat", "category"), ("text", "string"), categories=("a", "b"))
    frame = pd.DataFrame(
        {"cat": pd.Categorical(["a", None, "b"]), "text": pd.Series(["x", None, "z"], dtype="str")}
    )
    out = coerce_frame(frame, sig)
    assert out["cat"].dtype == object
    assert out["cat"].tolist()[0] == "a" and pd.isna(out["cat"].iloc[1])
    assert out["text"].dtype == object and out["text"].iloc[2] == "z"


def test_timezone_aware_datetimes_become_naive_utc() -> None:
    sig = _sig(("when", "datetime"))
    out = coerce_frame(pd.DataFrame({"when": ["2024-01-02T10:00:00+02:00"]}), sig)
    assert out["when"].iloc[0] == pd.Timestamp("2024-01-02 08:00")
    aware = pd.DataFrame({"when": pd.to_datetime(["2024-01-02 10:00"]).tz_localize("UTC")})
    assert coerce_frame(aware, sig)["when"].dtype == "datetime64[ns]"


def test_mixed_datetime_formats_in_a_dataset() -> None:
    sig = _sig(("when", "datetime"))
    frame = pd.DataFrame({"when": ["2024-01-02", "03/04/2024", None] * 100})
    out = coerce_frame(frame, sig)
    assert out["when"].iloc[1] == pd.Timestamp("2024-03-04")
    assert out["when"].isna().sum() == 100


def test_missing_columns_are_named() -> None:
    with pytest.raises(PredictionError, match=r"missing input column\(s\) \['flag', 'when'\]"):
        coerce_frame(_records(1).drop(columns=["flag", "when"]), SIG)


@pytest.mark.parametrize("n_rows", [1, 300])
def test_bad_values_name_column_rows_and_expectation(n_rows: int) -> None:
    frame = _records(n_rows)
    frame["num"] = ["1"] * (n_rows - 1) + ["abc"]
    frame["flag"] = "maybe"
    with pytest.raises(PredictionError) as info:
        coerce_frame(frame, SIG)
    msg = str(info.value)
    assert f"column 'num': 1 of {n_rows} value(s) invalid (row {n_rows}: 'abc')" in msg
    assert "expected a number" in msg
    assert "column 'flag'" in msg and "expected a boolean" in msg
    assert "row 6:" not in msg  # at most five examples per column


def test_unknown_category_lists_the_allowed_ones() -> None:
    sig = _sig(("cat", "category"), categories=("a", "b"))
    with pytest.raises(PredictionError, match=r"row 2: 'c'.*one of the categories.*'a', 'b'"):
        coerce_frame(pd.DataFrame({"cat": ["a", "c", None]}), sig)


def test_extra_columns_ignored_and_index_kept() -> None:
    frame = _records(2)
    frame.index = pd.Index([10, 20])
    out = coerce_frame(frame, SIG)
    assert "extra" not in out.columns
    assert out.index.tolist() == [10, 20]


def test_empty_frame() -> None:
    out = coerce_frame(_records(1).iloc[:0], SIG)
    assert len(out) == 0 and list(out.columns) == SIG.input_names


_cells = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.integers(-(10**6), 10**6),
    st.sampled_from(["a", "b", "2007", "x y", "", "True"]),
    st.booleans(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data_frames(
        [
            column("f", dtype=float),
            column("i", dtype=int),
            column("b", dtype=bool),
            column("o", elements=_cells, dtype=object),
            column("s", elements=st.sampled_from(["p", "q", "r"]), dtype=object),
        ],
        index=range_indexes(min_size=0, max_size=30),
    )
)
def test_infer_then_coerce_round_trips(frame: pd.DataFrame) -> None:
    frame["s"] = frame["s"].astype("str")
    schema = infer_schema(frame)
    sig = Signature(inputs=tuple(schema.values()))
    out = coerce_frame(frame, sig)  # never raises on the frame the schema came from
    assert list(out.columns) == list(frame.columns)
    for col in sig.inputs:
        if col.kind == "category":
            present = out[col.name].dropna()
            assert set(present) <= set(col.categories or ())

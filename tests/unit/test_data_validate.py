"""validate and ValidationReport: structural, schema and expectation checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.data import CheckResult, ValidationReport, _validate, infer_schema, validate
from shipyard.errors import DataValidationError
from shipyard.spec import AllowedValues, NotNull, Range, Regex, RowCount, Unique


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "length": [40.0, 12.0, 45.0, np.nan, 99.1, 50.0],
            "island": pd.Series(["Dream", "Biscoe", "Dream", None, "Mars", "Biscoe"], dtype="str"),
            "id": [1, 2, 3, 3, 5, 6],
            "code": ["AB-1", "AB-2", "x", None, "AB-9", "AB-10"],
            "same": ["k"] * 6,
            "sex": ["m", "f", None, "m", "f", "f"],
        }
    )


def _failed(report: ValidationReport, check: str, column: str | None) -> CheckResult:
    matches = [r for r in report.results if r.check == check and r.column == column]
    assert matches, f"no {check} result for {column}"
    return matches[0]


def test_range_rows_are_one_based_positions() -> None:
    df = _frame()
    df.index = pd.Index([100, 101, 102, 103, 104, 105])  # labels do not matter, positions do
    report = validate(df, expectations=[Range(check="range", column="length", min=30, max=70)])
    result = _failed(report, "range", "length")
    assert (result.n_failed, result.n_checked) == (2, 6)
    assert result.examples == (2, 5) and result.example_values == (12.0, 99.1)
    assert report.to_text() == (
        "ERROR  length  range [30, 70]: 2 of 6 rows fail (rows 2, 5; values 12.0, 99.1)\n"
        "WARNING  same  constant column: every present value is 'k'; it cannot help a model, "
        "exclude it in features.exclude"
    )
    assert not report.ok


def test_each_expectation() -> None:
    exps = [
        NotNull(check="not_null", column="island", severity="warning"),
        AllowedValues(check="allowed_values", column="island", values=["Dream", "Biscoe"]),
        Unique(check="unique", column="id"),
        Regex(check="regex", column="code", pattern=r"AB-\d+"),
        RowCount(check="row_count", min=10),
        AllowedValues(check="allowed_values", column="id", values=["1", 2, 3, 5, 6]),
    ]
    report = validate(_frame(), expectations=exps)
    assert _failed(report, "not_null", "island").examples == (4,)
    allowed = _failed(report, "allowed_values", "island")
    assert allowed.examples == (5,) and allowed.example_values == ("Mars",)
    assert _failed(report, "unique", "id").examples == (3, 4)
    regex = _failed(report, "regex", "code")
    assert regex.examples == (3,) and regex.example_values == ("x",)
    assert "6 rows, outside" in _failed(report, "row_count", None).message
    assert _failed(report, "allowed_values", "id").passed  # "1" matches 1 as text
    assert [r.check for r in report.warnings] == ["constant", "not_null"]


def test_regex_on_object_and_python_only_syntax() -> None:
    df = pd.DataFrame({"n": [10, 200, None], "s": pd.Series(["ab", "ba", None], dtype="str")})
    report = validate(
        df,
        expectations=[
            Regex(check="regex", column="n", pattern=r"\d\d"),
            Regex(check="regex", column="s", pattern=r"a(?=b)b"),  # lookahead: not RE2
            Regex(check="regex", column="s", pattern=r"(unclosed"),
        ],
    )
    assert _failed(report, "regex", "n").examples == (2,)
    results = [r for r in report.results if r.check == "regex" and r.column == "s"]
    assert results[0].examples == (2,)
    assert "not a valid regular expression" in results[1].message


def test_unknown_column_and_non_numeric_range() -> None:
    exps = [
        NotNull(check="not_null", column="lenght", severity="warning"),
        Range(check="range", column="island", min=0),
    ]
    report = validate(_frame(), expectations=exps)
    unknown = _failed(report, "not_null", "lenght")
    assert unknown.severity == "error" and "did you mean 'length'" in unknown.message
    assert "needs a numeric column" in _failed(report, "range", "island").message


def test_structural_checks() -> None:
    df = _frame()
    df["empty"] = None
    report = validate(df, target="sex", max_missing_fraction=0.5)
    target = _failed(report, "target_missing", "sex")
    assert target.severity == "warning" and target.examples == (3,)
    assert not _failed(report, "missing_fraction", "empty").passed
    assert _failed(report, "missing_fraction", "length").passed
    assert not _failed(report, "constant", "same").passed
    assert _failed(report, "constant", "length").passed
    assert report.ok
    dupes = pd.concat([df[["id"]], df[["id"]]], axis=1)
    assert "duplicate column names: 'id' x2" in validate(dupes).errors[0].message
    assert "did you mean 'sex'" in validate(df, target="sx").errors[0].message


def test_schema_checks_against_training_data() -> None:
    train = _frame().drop(columns=["same"]).iloc[[0, 5]]
    schema = infer_schema(train, overrides={"island": "category"})
    new = _frame().drop(columns=["code"])
    new["id"] = ["1", "2", "x", "4", "5", "6"]
    report = validate(new, schema=schema)
    assert _failed(report, "missing_column", "code").severity == "error"
    assert _failed(report, "type", "id").examples == (3,)
    assert _failed(report, "training_range", "length").example_values == (12.0, 99.1)
    categories = _failed(report, "categories", "island")
    assert categories.severity == "warning" and categories.example_values == ("Mars",)
    assert _failed(report, "nulls", "island").examples == (4,)
    assert len(report.errors) == 2


def test_report_serialisation_and_raise() -> None:
    report = validate(_frame(), expectations=[Unique(check="unique", column="id")])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["n_rows"] == 6 and data["n_errors"] == 1
    with pytest.raises(DataValidationError, match=r"(?s)1 error check.*id  unique") as info:
        report.raise_for_errors()
    assert info.value.report is report
    clean = validate(pd.DataFrame({"a": [1, 2]}))
    clean.raise_for_errors()
    assert clean.to_text().startswith("OK  all")


def test_empty_frame() -> None:
    report = validate(
        pd.DataFrame({"a": pd.Series([], dtype=float)}),
        expectations=[RowCount(check="row_count", min=1)],
    )
    assert [r.check for r in report.errors] == ["row_count"]


def test_example_values_are_plain_python() -> None:
    df = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2024-01-01"]), "n": [1, 1]})
    report = validate(
        df, expectations=[Unique(check="unique", column="t"), Unique(check="unique", column="n")]
    )
    assert _failed(report, "unique", "t").example_values == ("2024-01-01T00:00:00",) * 2
    assert type(_failed(report, "unique", "n").example_values[0]) is int


def test_large_data_runs_expectations_in_threads_with_the_same_results() -> None:
    """Above the parallel threshold the results and their order match a serial run."""
    n = _validate._PARALLEL_ROWS + 10
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "s": np.where(rng.random(n) < 0.01, "bad", "ok-1"),
            "i": np.arange(n),
        }
    )
    expectations = [
        Range(check="range", column="x", min=-3, max=3),
        Regex(check="regex", column="s", pattern=r"ok-\d"),
        Unique(check="unique", column="i"),
        NotNull(check="not_null", column="x"),
    ]
    parallel = _validate.validate(frame, expectations=expectations).results
    serial = [
        _validate.check_expectation(e, _validate._first_columns(frame), n) for e in expectations
    ]
    assert parallel[-4:] == serial
    assert [r.check for r in parallel[-4:]] == ["range", "regex", "unique", "not_null"]
    assert parallel[-3].n_failed == int((frame["s"] == "bad").sum()) > 0


def test_an_all_missing_column_is_named_whatever_the_limit() -> None:
    df = _frame()
    df["empty"] = None
    for limit in (0.5, 1.0):
        empty = _failed(validate(df, max_missing_fraction=limit), "missing_fraction", "empty")
        assert empty.severity == "warning" and not empty.passed
        assert "every value is missing (6 rows)" in empty.message
        assert "features.exclude" in empty.message
    sentence = empty.to_sentence()
    assert sentence.startswith("column 'empty': every value is missing")
    table = validate(df, expectations=[RowCount(check="row_count", min=10)]).errors[0]
    assert table.to_sentence() == table.message  # a table-level result has no column to name

"""Number columns holding a few values that are not numbers: found, reported, read as missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.data import (
    ColumnSchema,
    Signature,
    build_signature,
    coerce_frame,
    read_numbers,
    validate,
)
from shipyard.errors import PredictionError
from shipyard.spec import ProjectSpec, load_spec

N = 40


def _wine() -> pd.DataFrame:
    """``magnesium`` as a CSV gives it: text, 3 of 40 values not numbers (rows 5, 9 and 31)."""
    magnesium = [str(100.0 + i) for i in range(N)]
    magnesium[4], magnesium[8], magnesium[30] = "n/a", "?", "100 mg"
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "magnesium": pd.Series(magnesium, dtype=object),
            "colour": pd.Series(rng.choice(["red", "white"], N), dtype=object),
            "half": pd.Series([str(i) if i % 2 else f"x{i}" for i in range(N)], dtype=object),
            "quality": rng.integers(3, 9, N),
        }
    )


def _spec(
    tmp_path: Path, extra: str = "", *, source: str = "csv", target: str = "quality"
) -> ProjectSpec:
    path = tmp_path / "shipyard.yaml"
    src = "{type: csv, path: wine.csv}" if source == "csv" else "{type: parquet, path: w.pq}"
    path.write_text(f"name: wine\ndata:\n  source: {src}\n  target: {target}\n{extra}")
    return load_spec(path)


def test_stray_text_in_a_number_column_is_an_error_by_default(tmp_path: Path) -> None:
    frame, results = read_numbers(_wine(), _spec(tmp_path))
    (result,) = results
    assert (result.check, result.column, result.severity) == ("numbers", "magnesium", "error")
    assert (result.n_failed, result.n_checked) == (3, N)
    assert result.examples == (5, 9, 31) and result.example_values == ("n/a", "?", "100 mg")
    message = result.message
    assert "37 of 40 values are numbers, 3 are not" in message
    assert "rows 5, 9, 31 (lines 6, 10, 32 of the CSV file)" in message
    assert "'n/a', '?', '100 mg'" in message
    assert "data.on_bad_numbers: coerce" in message and "shipyard.yaml" in message
    assert "features.types" in message
    # the text column and the half-numbers column are left alone
    assert frame["colour"].dtype == object and frame["half"].dtype == object
    report = validate(frame, target="quality", checks=results)
    assert not report.ok and report.errors == [result]


def test_coerce_reads_them_as_missing_with_a_warning(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "  on_bad_numbers: coerce\n", source="parquet")
    frame, (result,) = read_numbers(_wine(), spec)
    assert result.severity == "warning" and "read as missing" in result.message
    assert "lines" not in result.message  # no file lines for a Parquet file
    assert frame["magnesium"].dtype == "float64"
    assert frame["magnesium"].isna().sum() == 3 and frame["magnesium"].iloc[0] == 100.0
    assert frame["magnesium"].iloc[[4, 8, 30]].isna().all()
    assert _wine()["magnesium"].iloc[4] == "n/a"  # the input frame is not changed


def test_only_the_models_columns_and_not_declared_text(tmp_path: Path) -> None:
    excluded = _spec(tmp_path, "features:\n  exclude: [magnesium]\n")
    assert read_numbers(_wine(), excluded)[1] == []
    declared = _spec(tmp_path, "features:\n  types: {magnesium: category}\n")
    assert read_numbers(_wine(), declared)[1] == []
    # a column declared a number is checked whatever its share of numbers
    _, results = read_numbers(_wine(), _spec(tmp_path, "features:\n  types: {half: number}\n"))
    result = results[1]
    assert [r.column for r in results] == ["magnesium", "half"]
    assert result.column == "half" and result.n_failed == N // 2
    assert "declared 'number' in features.types" in result.message


def test_the_target_unless_the_task_is_classification(tmp_path: Path) -> None:
    wine = _wine()
    found = read_numbers(
        wine, _spec(tmp_path, "features:\n  exclude: [magnesium]\n", target="magnesium")
    )
    assert [r.column for r in found[1]] == ["magnesium"]
    classes = _spec(
        tmp_path, "task: multiclass\nfeatures:\n  exclude: [magnesium]\n", target="magnesium"
    )
    assert read_numbers(wine, classes)[1] == []


def test_large_text_columns_are_settled_without_a_full_parse(tmp_path: Path) -> None:
    n = 50_000
    big = pd.DataFrame(
        {
            "word": pd.Series(np.where(np.arange(n) % 3, "red", "blue"), dtype="str"),
            "amount": pd.Series(np.arange(n).astype(str), dtype="str"),
            "quality": np.arange(n) % 5,
        }
    )
    big.loc[n - 1, "amount"] = "lots"
    frame, (result,) = read_numbers(big, _spec(tmp_path))
    assert result.column == "amount" and result.examples == (n,)
    assert frame["word"].dtype == "str"
    # strays in step with a stride through the rows (every 50th): still found
    big.loc[::50, "amount"] = "?"
    _, (result,) = read_numbers(big, _spec(tmp_path))
    assert result.n_failed == n // 50 + 1 and result.examples[:3] == (1, 51, 101)


def test_build_signature_carries_the_policy_to_number_inputs(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "  on_bad_numbers: coerce\n")
    frame, _ = read_numbers(_wine(), spec)
    sig = build_signature(frame, spec, "multiclass")
    assert sig.column("magnesium").kind == "number"
    assert sig.column("magnesium").on_bad_numbers == "coerce"
    assert sig.column("colour").on_bad_numbers == "error"  # only numbers have a policy
    plain = build_signature(frame, _spec(tmp_path), "multiclass")
    assert plain.column("magnesium").on_bad_numbers == "error"


def test_coerce_frame_applies_the_same_rule_to_new_data() -> None:
    def sig(policy: str) -> Signature:
        col = ColumnSchema(
            name="magnesium", kind="number", dtype="float64", nullable=True, on_bad_numbers=policy
        )
        return Signature(inputs=(col,))

    records = pd.DataFrame({"magnesium": ["99", "n/a", 101.5, None]})
    x = coerce_frame(records, sig("coerce"))
    assert x["magnesium"].tolist()[0] == 99.0 and x["magnesium"].isna().tolist() == [
        False,
        True,
        False,
        True,
    ]
    with pytest.raises(PredictionError, match=r"row 2: 'n/a'"):
        coerce_frame(records, sig("error"))
    # new data checked against the signature: the policy holds there too
    assert validate(records, schema=sig("coerce")).ok
    assert not validate(records, schema=sig("error")).ok


def test_only_number_columns_take_a_policy() -> None:
    with pytest.raises(ValueError, match="on_bad_numbers"):
        ColumnSchema(
            name="c", kind="category", dtype="object", nullable=True, on_bad_numbers="coerce"
        )

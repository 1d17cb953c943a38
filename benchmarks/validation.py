"""Benchmark: Shipyard's ``validate`` against an equivalent pandera DataFrameSchema.

Generates 1,000,000 rows x 20 columns (numbers, categories, free text, some nulls), declares
about 40 expectations (not_null, range, allowed_values, unique, regex), and times the median
of 3 runs of each library on the same frame. Exits non-zero when Shipyard takes 0.5 s or more.

Run: ``python benchmarks/validation.py [--rows N]`` (needs ``pip install pandera``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from shipyard.data import validate
from shipyard.spec import AllowedValues, NotNull, Range, Regex, Unique

BUDGET_S = 0.5
N_NUMERIC = 10
N_CATEGORY = 6
N_TEXT = 3
CATEGORIES = ["red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"]


def make_frame(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """1 id column, 10 numeric, 6 category and 3 text columns; about 1% nulls in some."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {"id": np.arange(n_rows, dtype="int64")}
    for i in range(N_NUMERIC):
        values = rng.normal(50.0, 10.0, n_rows)
        if i % 2 == 0:
            values[rng.random(n_rows) < 0.01] = np.nan
        data[f"num_{i}"] = values
    for i in range(N_CATEGORY):
        codes = rng.integers(0, len(CATEGORIES), n_rows)
        cats = pd.Series(np.asarray(CATEGORIES, dtype=object)[codes], dtype="str")
        data[f"cat_{i}"] = cats.where(rng.random(n_rows) >= 0.01)
    for i in range(N_TEXT):
        digits = rng.integers(0, 10**6, n_rows).astype(str)
        data[f"text_{i}"] = pd.Series(np.char.add("ID-", digits), dtype="str")
    return pd.DataFrame(data)


def shipyard_expectations() -> list[Any]:
    """About 40 expectations over the 20 columns."""
    exps: list[Any] = [Unique(check="unique", column="id"), NotNull(check="not_null", column="id")]
    for i in range(N_NUMERIC):
        exps.append(Range(check="range", column=f"num_{i}", min=-100.0, max=200.0))
        if i % 2 == 1:
            exps.append(NotNull(check="not_null", column=f"num_{i}"))
        else:
            exps.append(NotNull(check="not_null", column=f"num_{i}", severity="warning"))
    for i in range(N_CATEGORY):
        values: list[str | int | float | bool] = list(CATEGORIES)
        exps.append(AllowedValues(check="allowed_values", column=f"cat_{i}", values=values))
        exps.append(NotNull(check="not_null", column=f"cat_{i}", severity="warning"))
    for i in range(N_TEXT):
        exps.append(Regex(check="regex", column=f"text_{i}", pattern=r"ID-\d+"))
        exps.append(NotNull(check="not_null", column=f"text_{i}"))
    return exps


def pandera_schema() -> Any:
    """The same checks as a pandera DataFrameSchema (None when pandera is missing)."""
    try:
        import pandera.pandas as pa
    except ImportError:
        return None
    columns: dict[str, Any] = {"id": pa.Column("int64", unique=True, nullable=False)}
    for i in range(N_NUMERIC):
        check = pa.Check.in_range(-100.0, 200.0)
        columns[f"num_{i}"] = pa.Column(float, check, nullable=i % 2 == 0)
    for i in range(N_CATEGORY):
        columns[f"cat_{i}"] = pa.Column(str, pa.Check.isin(CATEGORIES), nullable=True)
    for i in range(N_TEXT):
        columns[f"text_{i}"] = pa.Column(str, pa.Check.str_matches(r"^ID-\d+$"), nullable=False)
    return pa.DataFrameSchema(columns, coerce=False)


def median_seconds(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def coerce_one_row() -> tuple[float, float]:
    """Per-request cost of ``coerce_frame`` on one record vs building its DataFrame (ms)."""
    from shipyard.data import Signature, coerce_frame, infer_schema

    sample = make_frame(1000).drop(columns=["id"])
    signature = Signature(inputs=tuple(infer_schema(sample).values()))
    record = sample.iloc[:1].astype(object).to_dict("records")
    frame = pd.DataFrame(record)
    n = 500
    build = median_seconds(lambda: [pd.DataFrame(record) for _ in range(n)]) / n
    coerce = median_seconds(lambda: [coerce_frame(frame, signature) for _ in range(n)]) / n
    return coerce * 1e3, build * 1e3


def main() -> int:
    """Run the benchmark and print a table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    df = make_frame(args.rows)
    exps = shipyard_expectations()
    report = validate(df, expectations=exps)
    n_checks = len(report.results)
    ours = median_seconds(lambda: validate(df, expectations=exps))
    schema = pandera_schema()
    theirs = median_seconds(lambda: schema.validate(df, lazy=True)) if schema else None
    print(f"validation of {len(df):,} rows x {df.shape[1]} columns")
    print(f"{len(exps)} expectations, {n_checks} checks in all (errors: {len(report.errors)})")
    print(f"{'library':<12}{'median of 3 (s)':>18}{'ratio':>10}")
    print(f"{'shipyard':<12}{ours:>18.3f}{1.0:>10.2f}")
    if theirs is None:
        print("pandera     not installed (pip install pandera) - no peer to compare")
    else:
        print(f"{'pandera':<12}{theirs:>18.3f}{theirs / ours:>10.2f}")
        print(f"shipyard is {theirs / ours:.1f}x faster than pandera")
    coerce_ms, build_ms = coerce_one_row()
    print(
        f"coerce_frame, 1 record x {df.shape[1] - 1} columns: {coerce_ms:.3f} ms "
        f"(pd.DataFrame(records) of the same record: {build_ms:.3f} ms, "
        f"ratio {coerce_ms / build_ms:.2f})"
    )
    if ours >= BUDGET_S and args.rows >= 1_000_000:
        print(f"FAIL: shipyard took {ours:.3f} s, budget {BUDGET_S} s")
        return 1
    print(f"OK: within the {BUDGET_S} s budget" if args.rows >= 1_000_000 else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""holdout_split and cv_splitter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

from shipyard.data import cv_splitter, holdout_split
from shipyard.errors import DataError
from shipyard.spec._models import SplitSpec


def _frame(n: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": np.where(np.arange(n) % 4 == 0, "rare", "common"),
            "when": pd.date_range("2024-01-01", periods=n)[::-1].astype(str),
        }
    )


def test_stratified_by_default_for_classification() -> None:
    df = _frame()
    train, test = holdout_split(df, target="y", split=SplitSpec(), task="binary")
    assert len(test) == 20 and len(train) == 80
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(range(100))
    assert (df["y"].iloc[test] == "rare").sum() == 5  # the class share is kept
    assert list(train) == sorted(train)


def test_seeded_and_reproducible() -> None:
    df = _frame()
    first = holdout_split(df, target="x", split=SplitSpec(seed=3), task="regression")
    again = holdout_split(df, target="x", split=SplitSpec(seed=3), task="regression")
    other = holdout_split(df, target="x", split=SplitSpec(seed=4), task="regression")
    assert np.array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_rows_without_target_are_left_out() -> None:
    df = _frame()
    df.loc[[0, 5, 7], "y"] = None
    train, test = holdout_split(df, target="y", split=SplitSpec(), task="binary")
    assert len(train) + len(test) == 97
    assert not {0, 5, 7} & (set(train) | set(test))


def test_stratification_impossible_names_the_class() -> None:
    df = _frame()
    df.loc[3, "y"] = "unique"
    with pytest.raises(DataError, match=r"class\(es\) 'unique' \(1 row\)"):
        holdout_split(df, target="y", split=SplitSpec(), task="multiclass")
    with pytest.raises(DataError, match="needs a classification task"):
        holdout_split(df, target="x", split=SplitSpec(strategy="stratified"), task="regression")


def test_time_split_tests_on_the_latest_rows() -> None:
    df = _frame()
    split = SplitSpec(strategy="time", time_column="when", test_size=0.1)
    train, test = holdout_split(df, target="y", split=split, task="binary")
    when = pd.to_datetime(df["when"])
    assert when.iloc[train].max() < when.iloc[test].min()
    assert when.iloc[train].is_monotonic_increasing  # time order for TimeSeriesSplit
    assert sorted(test) == list(range(10))  # the frame is newest first


def test_time_split_errors() -> None:
    df = _frame()
    with pytest.raises(DataError, match="'whn' is not in the data; did you mean 'when'"):
        holdout_split(
            df, target="y", split=SplitSpec(strategy="time", time_column="whn"), task="binary"
        )
    df["word"] = "hello"
    with pytest.raises(DataError, match="'word' is not date-like"):
        holdout_split(
            df, target="y", split=SplitSpec(strategy="time", time_column="word"), task="binary"
        )
    df.loc[4, "when"] = None
    with pytest.raises(DataError, match=r"1 missing or unparseable value\(s\) \(rows \[5\]\)"):
        holdout_split(
            df, target="y", split=SplitSpec(strategy="time", time_column="when"), task="binary"
        )


def test_unknown_target() -> None:
    with pytest.raises(DataError, match="did you mean 'y'"):
        holdout_split(_frame(), target="yy", split=SplitSpec(), task="binary")


def test_cv_splitters() -> None:
    strat = cv_splitter(split=SplitSpec(cv_folds=3, seed=7), task="binary")
    assert isinstance(strat, StratifiedKFold) and strat.n_splits == 3
    assert strat.random_state == 7 and strat.shuffle
    assert isinstance(cv_splitter(split=SplitSpec(), task="regression"), KFold)
    assert isinstance(cv_splitter(split=SplitSpec(strategy="random"), task="binary"), KFold)
    time_split = SplitSpec(strategy="time", time_column="when")
    assert isinstance(cv_splitter(split=time_split, task="binary"), TimeSeriesSplit)

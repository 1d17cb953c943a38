"""Reference profiles: numeric bins and quantiles, category frequencies, datetime ranges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.data import (
    CategoricalProfile,
    ColumnSchema,
    DatetimeProfile,
    NumericProfile,
    ReferenceProfile,
    Signature,
    profile_frame,
    profile_values,
)

SIG = Signature(
    inputs=(
        ColumnSchema(name="x", kind="number", dtype="float64", nullable=True),
        ColumnSchema(name="k", kind="integer", dtype="int64", nullable=False),
        ColumnSchema(name="c", kind="category", dtype="str", nullable=True, categories=("a", "b")),
        ColumnSchema(name="d", kind="datetime", dtype="datetime64[ns]", nullable=True),
    )
)


def _frame(n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(10, 2, n)
    x[:50] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": np.full(n, 3.0),
            "c": np.asarray(rng.choice(["a", "b", None], n, p=[0.6, 0.3, 0.1]), dtype=object),
            "d": pd.to_datetime("2024-01-01") + pd.to_timedelta(np.arange(n), unit="h"),
        }
    )


def test_profile_frame_numbers_categories_datetimes() -> None:
    frame = _frame()
    profile = profile_frame(frame, SIG)
    x = profile.columns["x"]
    assert isinstance(x, NumericProfile)
    assert (x.count, x.missing) == (950, 50)
    assert x.mean == pytest.approx(np.nanmean(frame["x"]))
    assert x.quantiles["0.5"] == pytest.approx(np.nanmedian(frame["x"]))
    assert sum(x.bin_counts) == 950 and len(x.bin_edges) == len(x.bin_counts) + 1 == 11
    assert max(x.bin_counts) - min(x.bin_counts) <= 2  # quantile bins hold equal shares
    k = profile.columns["k"]
    assert isinstance(k, NumericProfile) and k.bin_counts == [1000]  # a constant: one bin
    c = profile.columns["c"]
    assert isinstance(c, CategoricalProfile)
    assert c.count + c.missing == 1000 and set(c.frequencies) == {"a", "b"}
    assert list(c.frequencies) == ["a", "b"]  # most frequent first
    d = profile.columns["d"]
    assert isinstance(d, DatetimeProfile) and d.minimum == "2024-01-01T00:00:00"


def test_reference_profile_round_trips_through_json() -> None:
    inputs = profile_frame(_frame(200), SIG)
    predictions = {
        "prediction": profile_values(np.array(["yes", "no", "yes"]), categorical=True),
        "confidence": profile_values(np.array([0.9, 0.6, 0.8]), categorical=False),
    }
    profile = ReferenceProfile(inputs=inputs, predictions=predictions)
    again = ReferenceProfile.from_json(profile.to_json())
    assert again == profile
    assert again.predictions["prediction"].frequencies == {"yes": 2, "no": 1}  # type: ignore[union-attr]


def test_empty_and_many_categories() -> None:
    empty = profile_values(np.array([np.nan, np.nan]), categorical=False)
    assert isinstance(empty, NumericProfile) and empty.count == 0 and empty.bin_edges == []
    many = profile_values(np.array([f"v{i}" for i in range(250)] * 2), categorical=True)
    assert isinstance(many, CategoricalProfile)
    assert len(many.frequencies) == 200 and many.other == 100

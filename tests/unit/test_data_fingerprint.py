"""fingerprint: stable under copies and layout, sensitive to every cell, name and order."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from shipyard.data import fingerprint

frames = data_frames(
    [
        column("a", dtype=float),
        column("b", elements=st.integers(-1000, 1000), dtype=int),
        column("c", elements=st.text(max_size=5), dtype=object),
    ],
    index=range_indexes(min_size=1, max_size=20),
)


def test_hex_sha256() -> None:
    value = fingerprint(pd.DataFrame({"a": [1, 2]}))
    assert re.fullmatch(r"[0-9a-f]{64}", value), value


@settings(max_examples=50, deadline=None)
@given(frames)
def test_stable_under_copy_layout_and_index(df: pd.DataFrame) -> None:
    value = fingerprint(df)
    assert fingerprint(df.copy()) == value
    assert fingerprint(df.set_axis(range(100, 100 + len(df)))) == value
    fortran = pd.DataFrame(np.asfortranarray(df[["a"]].to_numpy()), columns=["a"])
    assert fingerprint(fortran.assign(b=df["b"], c=df["c"])) == value


@settings(max_examples=50, deadline=None)
@given(frames, st.data())
def test_any_cell_change_changes_it(df: pd.DataFrame, data: st.DataObject) -> None:
    row = data.draw(st.integers(0, len(df) - 1))
    col = data.draw(st.sampled_from(["a", "b", "c"]))
    changed = df.copy()
    old = changed.at[row, col]
    if col == "a":
        new: object = 0.5 if old != 0.5 else 1.5
    elif col == "b":
        new = int(old) + 1
    else:
        new = str(old) + "x"
    changed.at[row, col] = new
    assert fingerprint(changed) != fingerprint(df)


def test_names_order_dtypes_and_nulls_matter() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    base = fingerprint(df)
    assert fingerprint(df.rename(columns={"a": "z"})) != base
    assert fingerprint(df[["b", "a"]]) != base
    assert fingerprint(df.astype({"a": "float64"})) != base
    assert fingerprint(df.fillna({"b": ""})) != base
    assert fingerprint(df.iloc[:1]) != base
    assert fingerprint(pd.DataFrame()) == fingerprint(pd.DataFrame())

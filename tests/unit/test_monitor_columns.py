"""ColumnSamples, the shared preparation of one column's two samples for every drift test.

The numeric path sorts both samples at once by tagging each value's lowest bit with its sample;
these tests hold it to :func:`numpy.sort` of the concatenation (within the one unit in the last
place the tag may cost), to the counts a plain ``value_counts`` gives, and to
:func:`numpy.histogram`'s bins. The categorical path is held to ``value_counts``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shipyard.monitor import ColumnSamples

RTOL = 1e-15  # one unit in the last place is 2.2e-16 of a value


def _finite_sorted(values: Any) -> np.ndarray:
    """The finite values as float64, sorted: what the numeric samples should hold."""
    array = np.asarray(values, dtype=np.float64)
    return np.sort(array[np.isfinite(array)])


def _value_counts(reference: Any, current: Any) -> dict[Any, tuple[int, int]]:
    """Each distinct non-missing value's (reference, current) count, the slow way."""
    ref = pd.Series(reference).dropna().value_counts()
    cur = pd.Series(current).dropna().value_counts()
    keys = set(ref.index) | set(cur.index)
    return {key: (int(ref.get(key, 0)), int(cur.get(key, 0))) for key in keys}


def _counts_dict(samples: ColumnSamples) -> dict[Any, tuple[int, int]]:
    counts = samples.counts
    return {
        key: (int(r), int(c))
        for key, r, c in zip(counts.keys.tolist(), counts.reference, counts.current, strict=True)
    }


_floats = st.floats(allow_nan=True, allow_infinity=True)
_samples = hnp.arrays(np.float64, st.integers(0, 60), elements=_floats)


# -- the merged sort -------------------------------------------------------------------------


@given(reference=_samples, current=_samples)
def test_merged_is_the_sorted_concatenation(reference: np.ndarray, current: np.ndarray) -> None:
    samples = ColumnSamples.numeric("x", reference, current)
    values, in_current = samples.merged
    expected = _finite_sorted(np.concatenate([reference, current]))
    np.testing.assert_allclose(values, expected, rtol=RTOL, atol=0)
    assert values.dtype == np.float64
    assert int(in_current.sum()) == np.isfinite(current).sum() == samples.n_current
    assert int((~in_current).sum()) == np.isfinite(reference).sum() == samples.n_reference
    np.testing.assert_allclose(samples.reference, _finite_sorted(reference), rtol=RTOL, atol=0)
    np.testing.assert_allclose(samples.current, _finite_sorted(current), rtol=RTOL, atol=0)
    assert samples.missing_reference == reference.size - samples.n_reference
    assert samples.missing_current == current.size - samples.n_current


def test_nan_and_infinities_are_dropped_and_counted() -> None:
    reference = [1.0, np.nan, np.inf, 2.0, -np.inf]
    current = pd.Series([np.nan, 3.0, None, np.inf])
    samples = ColumnSamples.numeric("x", reference, current)
    assert samples.n_reference == 2
    assert samples.missing_reference == 3
    assert samples.n_current == 1
    assert samples.missing_current == 3
    assert samples.reference.tolist() == [1.0, 2.0]
    assert samples.current.tolist() == [3.0]


def test_nullable_integers_with_missing_values() -> None:
    reference = pd.Series([3, None, 1, 2], dtype="Int64")
    current = pd.Series([None, None, 5], dtype="Int64")
    samples = ColumnSamples.numeric("x", reference, current)
    assert samples.integer
    assert (samples.n_reference, samples.missing_reference) == (3, 1)
    assert (samples.n_current, samples.missing_current) == (1, 2)
    assert samples.reference.tolist() == [1.0, 2.0, 3.0]


def test_negatives_zero_and_ties_keep_their_order() -> None:
    reference = np.array([-3.0, 0.0, 5.0, -3.0, 2.5, 0.0])
    current = np.array([0.0, -3.0, 7.0, -1e-300, 1e300, -1e300])
    samples = ColumnSamples.numeric("x", reference, current)
    values, in_current = samples.merged
    expected = np.sort(np.concatenate([reference, current]))
    np.testing.assert_allclose(values, expected, rtol=RTOL, atol=0)
    assert np.all(np.diff(values) >= 0)
    assert int(in_current.sum()) == current.size
    # equal values in both samples stay equal: ties are ties after the tagging
    assert np.count_nonzero(values == values[np.searchsorted(values, -3.5)]) == 3
    np.testing.assert_allclose(samples.current, np.sort(current), rtol=RTOL, atol=0)


@given(
    values=st.lists(st.integers(-6, 6), min_size=1, max_size=80),
    split=st.integers(0, 80),
)
def test_counts_equal_value_counts_for_few_numbers(values: list[int], split: int) -> None:
    split = min(split, len(values))
    reference = np.array(values[:split], dtype=np.float64) * 0.75 + 0.5
    current = np.array(values[split:], dtype=np.float64) * 0.75 + 0.5
    samples = ColumnSamples.numeric("x", reference, current)
    expected = _value_counts(reference, current)
    got = _counts_dict(samples)
    # numbers may sit one unit in the last place off their value: match each to its nearest
    assert len(got) == len(expected) == samples.n_unique
    for key, pair in got.items():
        nearest = min(expected, key=lambda k, key=key: abs(k - key))
        assert nearest == pytest.approx(key, rel=RTOL, abs=0)
        assert pair == expected[nearest]
    assert np.all(np.diff(samples.counts.keys) > 0)
    assert samples.n_unique_reference == len(set(reference.tolist()))


def test_n_unique_before_and_after_counts_agree() -> None:
    reference = np.array([1.0, 1.0, 2.0, -4.0])
    current = np.array([2.0, 9.0, 9.0])
    fresh = ColumnSamples.numeric("x", reference, current)
    counted = ColumnSamples.numeric("x", reference, current)
    _ = counted.counts
    assert fresh.n_unique == counted.n_unique == 4


def test_negative_zero_equals_zero() -> None:
    samples = ColumnSamples.numeric("x", np.array([-0.0, 1.0]), np.array([0.0, 1.0]))
    assert samples.n_unique == pd.Series([-0.0, 1.0, 0.0, 1.0]).nunique() == 2
    assert _counts_dict(samples) == {0.0: (1, 1), 1.0: (1, 1)}
    assert samples.merged[0].tolist() == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("reference", "current", "integer"),
    [
        (np.array([1, 2, 3]), np.array([4, 5]), True),
        (pd.Series([1, 2], dtype="int32"), pd.Series([3], dtype="uint8"), True),
        (pd.Series([1, None], dtype="Int64"), pd.Series([3], dtype="Int64"), True),
        (np.array([1, 2, 3]), np.array([4.0, 5.0]), False),
        (np.array([1.0, 2.0]), np.array([4.0, 5.0]), False),
        ([1, 2, 3], [4, 5], False),  # a list has no dtype
    ],
)
def test_integer_flag_follows_both_dtypes(reference: Any, current: Any, integer: bool) -> None:
    assert ColumnSamples.numeric("x", reference, current).integer is integer


def test_empty_samples() -> None:
    samples = ColumnSamples.numeric("x", np.array([]), np.array([np.nan]))
    assert samples.n_reference == samples.n_current == 0
    assert samples.missing_current == 1
    assert samples.merged[0].size == 0
    assert samples.n_unique == 0
    assert samples.counts.keys.size == 0
    assert samples.reference.size == samples.current.size == 0


def test_one_empty_sample_keeps_the_other() -> None:
    samples = ColumnSamples.numeric("x", np.array([3.0, 1.0]), np.array([]))
    assert samples.reference.tolist() == [1.0, 3.0]
    assert samples.current.size == 0
    assert samples.n_unique == samples.n_unique_reference == 2


def test_categorical_has_no_sorted_values() -> None:
    samples = ColumnSamples.categorical("c", ["a"], ["b"])
    with pytest.raises(TypeError, match="categorical"):
        _ = samples.merged


def test_cdf_gaps_are_the_ecdf_difference() -> None:
    reference = np.array([0.0, 1.0, 1.0, 3.0])
    current = np.array([1.0, 2.0])
    steps, gaps = ColumnSamples.numeric("x", reference, current).cdf_gaps
    grid = np.sort(np.concatenate([reference, current]))
    f_ref = np.searchsorted(np.sort(reference), grid[:-1], side="right") / reference.size
    f_cur = np.searchsorted(np.sort(current), grid[:-1], side="right") / current.size
    nonzero = steps > 0  # between tied values the step is 0 and the gap is immaterial
    np.testing.assert_allclose(steps, np.diff(grid))
    np.testing.assert_allclose(gaps[nonzero], (f_ref - f_cur)[nonzero], atol=1e-15)


def test_reference_std_is_over_the_given_values() -> None:
    reference = np.array([1.0, 2.0, np.nan, 4.0, -np.inf])
    samples = ColumnSamples.numeric("x", reference, np.array([0.0]))
    assert samples.reference_std == pytest.approx(np.std([1.0, 2.0, 4.0]), rel=1e-15)


# -- histograms ------------------------------------------------------------------------------


def test_histogram_counts_values_on_edges_as_numpy() -> None:
    reference = np.array([0, 1, 2, 2, 3, 4, 4, 4, 5, 6, 8, 8])
    current = np.array([0, 0, 2, 4, 6, 6, 8, 8, 8])
    edges = np.array([0.0, 2.0, 4.0, 6.0, 8.0])  # every value but 1, 3 and 5 sits on an edge
    ref_counts, cur_counts = ColumnSamples.numeric("x", reference, current).histogram(edges)
    assert ref_counts.tolist() == np.histogram(reference, edges)[0].tolist() == [2, 3, 4, 3]
    assert cur_counts.tolist() == np.histogram(current, edges)[0].tolist() == [2, 1, 1, 5]


def test_histogram_leaves_out_values_outside_the_edges() -> None:
    reference = np.array([-1.0, 0.0, 0.5, 1.0, 1.5])
    edges = np.array([0.0, 0.5, 1.0])
    ref_counts, _ = ColumnSamples.numeric("x", reference, np.array([0.25])).histogram(edges)
    assert ref_counts.tolist() == np.histogram(reference, edges)[0].tolist() == [1, 2]


@given(
    reference=st.lists(st.integers(0, 40), min_size=1, max_size=80),
    current=st.lists(st.integers(0, 40), min_size=1, max_size=80),
    bins=st.integers(1, 12),
)
def test_histogram_of_whole_numbers_equals_numpy(
    reference: list[int], current: list[int], bins: int
) -> None:
    both = np.array(reference + current)
    edges = np.unique(np.round(np.linspace(both.min(), both.max() + 1, bins + 1)))
    if edges.size < 2:
        return
    ref_counts, cur_counts = ColumnSamples.numeric("x", reference, current).histogram(edges)
    assert ref_counts.tolist() == np.histogram(reference, edges)[0].tolist()
    assert cur_counts.tolist() == np.histogram(current, edges)[0].tolist()


@given(
    reference=hnp.arrays(np.float64, st.integers(1, 80), elements=st.floats(-1e3, 1e3)),
    current=hnp.arrays(np.float64, st.integers(1, 80), elements=st.floats(-1e3, 1e3)),
    bins=st.integers(1, 15),
)
def test_histogram_of_inner_floats_equals_numpy(
    reference: np.ndarray, current: np.ndarray, bins: int
) -> None:
    # edges that no value sits on: every value's bin is unambiguous
    low = min(reference.min(), current.min()) - 1.0
    high = max(reference.max(), current.max()) + 1.0
    edges = np.linspace(low, high, bins + 1)
    values = np.concatenate([reference, current])
    if np.any(np.abs(values[:, None] - edges[None, :]) <= 1e-9 * (np.abs(edges) + 1.0)):
        return
    ref_counts, cur_counts = ColumnSamples.numeric("x", reference, current).histogram(edges)
    assert ref_counts.tolist() == np.histogram(reference, edges)[0].tolist()
    assert cur_counts.tolist() == np.histogram(current, edges)[0].tolist()


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        (np.arange(-20, 5), np.array([-20, -16, -12, -8, -4, 0, 4])),
        (np.array([0.3, 0.5, 0.7, 0.9]), np.array([0.3, 0.9])),
    ],
    ids=["negative-integers", "positive-odd-significand"],
)
def test_histogram_on_numpy_edges_equals_numpy(reference: np.ndarray, current: np.ndarray) -> None:
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
    ref_counts, cur_counts = ColumnSamples.numeric("x", reference, current).histogram(edges)
    assert ref_counts.tolist() == np.histogram(reference, edges)[0].tolist()
    assert cur_counts.tolist() == np.histogram(current, edges)[0].tolist()


# -- categories ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        (["a", "b", "b", None, "c"], ["c", "c", "d", np.nan]),
        (
            pd.Categorical(["x", "y", None, "x"], categories=["x", "y", "z"]),
            pd.Categorical(["y", "y", "z"], categories=["x", "y", "z"]),
        ),
        (
            pd.Categorical(["x", "y"], categories=["x", "y"]),
            pd.Categorical(["y", "w"], categories=["y", "w"]),
        ),
        (pd.Series([1, "1", "a", None], dtype=object), pd.Series(["a", 1, 2.5], dtype=object)),
        ([True, False, True, None], [False, False, None]),
        (pd.Series([3, 1, 3], dtype="int64"), pd.Series([1, 7], dtype="int64")),
    ],
    ids=["strings", "categorical", "categorical-different-categories", "mixed", "bool", "codes"],
)
def test_categorical_counts_equal_value_counts(reference: Any, current: Any) -> None:
    samples = ColumnSamples.categorical("c", reference, current)
    expected = _value_counts(reference, current)
    assert _counts_dict(samples) == expected
    assert samples.kind == "categorical"
    assert samples.n_unique == len(expected)
    assert samples.n_reference == int(pd.Series(reference).notna().sum())
    assert samples.n_current == int(pd.Series(current).notna().sum())
    assert samples.missing_reference == len(reference) - samples.n_reference
    assert samples.missing_current == len(current) - samples.n_current
    assert samples.n_unique_reference == pd.Series(reference).nunique()


def test_categorical_numbers_and_text_compare_by_text() -> None:
    # one sample read as numbers, the other as text: 1 and "1" are one category
    samples = ColumnSamples.categorical(
        "c", pd.Series([1, 2, 2], dtype="int64"), pd.Series(["1", "1", "3"])
    )
    assert _counts_dict(samples) == {"1": (1, 2), "2": (2, 0), "3": (0, 1)}


def test_categorical_bool_against_bool_with_missing_values() -> None:
    # a bool column without gaps against one with a gap (object dtype): same categories
    samples = ColumnSamples.categorical("c", [True, False, True], [False, False, None])
    assert {str(k): v for k, v in _counts_dict(samples).items()} == {
        "True": (2, 0),
        "False": (1, 2),
    }


def test_categorical_float_codes_against_object_codes() -> None:
    reference = pd.Series([1.0, 2.0, 2.0, np.nan])
    current = pd.Series([1, 2, 2, None], dtype=object)
    samples = ColumnSamples.categorical("c", reference, current)
    assert samples.n_unique == 2
    assert sorted(_counts_dict(samples).values()) == [(1, 1), (2, 2)]


def test_categorical_all_missing() -> None:
    samples = ColumnSamples.categorical("c", [None, None], ["a"])
    assert (samples.n_reference, samples.missing_reference) == (0, 2)
    assert samples.n_unique == 1

"""Drift tests and ``detect_drift`` against a plain transcription of Evidently's stattests.

The ``ev_*`` functions below restate Evidently's legacy data-drift code
(``evidently.legacy.calculations.stattests`` and ``calculations.data_drift``) the slow, obvious
way: infinities and missing values dropped, ``value_counts`` over the union of both samples'
values, ``numpy.histogram_bin_edges(..., bins="sturges")`` above 20 distinct reference values,
and scipy for the statistics. They share no code with :mod:`shipyard.monitor`; every built-in
test, the automatic choice of test, the verdicts and the options are held to them.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from scipy.spatial import distance

from shipyard.errors import DataError, SpecError
from shipyard.monitor import (
    ColumnDrift,
    ColumnKind,
    ColumnSamples,
    DriftMethod,
    DriftMethods,
    DriftReport,
    column_kinds,
    default_drift_methods,
    detect_drift,
)
from shipyard.spec import ColumnDriftSpec, DriftSpec, MonitoringSpec

BUILTINS = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")

# -- Evidently, transcribed ------------------------------------------------------------------


def ev_clean(values: Any) -> pd.Series:
    """``data_drift.get_one_column_drift``: infinities become missing, missing values go."""
    series = pd.Series(values)
    if pd.api.types.is_numeric_dtype(series.dtype) or series.dtype == object:
        series = series.replace([-np.inf, np.inf], np.nan)
    return series.dropna()


def ev_keys(reference: pd.Series, current: pd.Series) -> list[Any]:
    """``utils.get_unique_not_nan_values_list_from_series``."""
    return list(set(reference.dropna().unique()) | set(current.dropna().unique()))


def ev_binned(
    reference: pd.Series, current: pd.Series, numeric: bool, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``utils.get_binned_data``: each bin's (or value's) share of each sample."""
    if numeric and reference.nunique() > 20:
        combined = np.asarray(pd.concat([reference, current], axis=0).values)
        bins = np.histogram_bin_edges(combined, bins="sturges")
        ref = np.histogram(reference, bins)[0] / len(reference)
        cur = np.histogram(current, bins)[0] / len(current)
    else:
        keys = ev_keys(reference, current)
        ref_counts = {**dict.fromkeys(keys, 0), **dict(reference.value_counts())}
        cur_counts = {**dict.fromkeys(keys, 0), **dict(current.value_counts())}
        ref = np.array([ref_counts[key] / len(reference) for key in keys])
        cur = np.array([cur_counts[key] / len(current) for key in keys])
    if fill_zeroes:
        for shares in (ref, cur):
            smallest = min(shares[shares != 0])
            np.place(shares, shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return ref, cur


def ev_ks(reference: pd.Series, current: pd.Series) -> float:
    return float(stats.ks_2samp(reference, current)[1])


def ev_wasserstein(reference: pd.Series, current: pd.Series) -> float:
    norm = max(float(np.std(reference)), 0.001)
    return float(stats.wasserstein_distance(reference, current)) / norm


def ev_chisquare(reference: pd.Series, current: pd.Series) -> float:
    keys = ev_keys(reference, current)
    ref_counts = {**dict.fromkeys(keys, 0), **dict(reference.value_counts())}
    cur_counts = {**dict.fromkeys(keys, 0), **dict(current.value_counts())}
    k_norm = current.shape[0] / reference.shape[0]
    f_exp = [ref_counts[key] * k_norm for key in keys]
    f_obs = [cur_counts[key] for key in keys]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(f_obs, f_exp)[1])


def ev_z(reference: pd.Series, current: pd.Series) -> float:
    """``z_stattest``: the smallest value's share against the rest (Evidently sorts the keys;
    for keys of mixed types, which Evidently cannot sort, Shipyard sorts by text)."""
    if (
        reference.nunique() == 1
        and current.nunique() == 1
        and reference.unique()[0] == current.unique()[0]
    ):
        return 1.0
    keys = ev_keys(reference, current)
    try:
        first = sorted(keys)[0]
    except TypeError:
        first = sorted(keys, key=str)[0]
    ref = reference.apply(lambda x: 0 if x == first else 1)
    cur = current.apply(lambda x: 0 if x == first else 1)
    n1, n2 = len(ref), len(cur)
    p1, p2 = float(sum(ref)) / n1, float(sum(cur)) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def ev_jensenshannon(reference: pd.Series, current: pd.Series, numeric: bool) -> float:
    ref, cur = ev_binned(reference, current, numeric, fill_zeroes=False)
    return float(distance.jensenshannon(ref, cur))


def ev_psi(reference: pd.Series, current: pd.Series, numeric: bool) -> float:
    ref, cur = ev_binned(reference, current, numeric, fill_zeroes=True)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def ev_statistic(method: str, reference: Any, current: Any, numeric: bool) -> float:
    """Evidently's statistic ``method`` on two raw samples."""
    ref, cur = ev_clean(reference), ev_clean(current)
    if method == "ks":
        return ev_ks(ref, cur)
    if method == "wasserstein":
        return ev_wasserstein(ref, cur)
    if method == "chisquare":
        return ev_chisquare(ref, cur)
    if method == "z":
        return ev_z(ref, cur)
    if method == "jensenshannon":
        return ev_jensenshannon(ref, cur, numeric)
    if method == "psi":
        return ev_psi(ref, cur, numeric)
    raise AssertionError(method)


def ev_default_method(reference: Any, current: Any, numeric: bool) -> str:
    """``registry._get_default_stattest`` on the cleaned samples."""
    ref, cur = ev_clean(reference), ev_clean(current)
    n_values = pd.concat([ref, cur]).nunique()
    if ref.shape[0] <= 1000:
        if numeric:
            if n_values <= 5:
                return "chisquare" if n_values > 2 else "z"
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if numeric:
        return "jensenshannon" if n_values <= 5 else "wasserstein"
    return "jensenshannon"


# -- helpers ---------------------------------------------------------------------------------


def _method(name: str) -> DriftMethod:
    return default_drift_methods().get(name)


def _samples(reference: Any, current: Any, kind: ColumnKind) -> ColumnSamples:
    if kind == "numeric":
        return ColumnSamples.numeric("x", reference, current)
    return ColumnSamples.categorical("x", reference, current)


def _compute(name: str, reference: Any, current: Any, kind: ColumnKind) -> float:
    return _method(name).compute(_samples(reference, current, kind))


def _close(actual: float, expected: float, rtol: float = 1e-9, atol: float = 1e-12) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    return math.isclose(actual, expected, rel_tol=rtol, abs_tol=atol)


def _assert_matches_evidently(name: str, reference: Any, current: Any, kind: ColumnKind) -> None:
    actual = _compute(name, reference, current, kind)
    expected = ev_statistic(name, reference, current, kind == "numeric")
    assert _close(actual, expected), (name, actual, expected)


def _frames(reference: Any, current: Any, column: str = "x") -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame({column: reference}), pd.DataFrame({column: current})


def _only(report: DriftReport) -> ColumnDrift:
    (result,) = report.columns
    return result


def _auto(reference: Any, current: Any, kind: ColumnKind) -> str | None:
    ref, cur = _frames(reference, current)
    return _only(detect_drift(ref, cur, kinds={"x": kind})).method


# -- the statistics against Evidently's -------------------------------------------------------

_RNG = np.random.default_rng(20240601)

_CATEGORICAL_CASES: dict[str, tuple[Any, Any]] = {
    "strings": (
        _RNG.choice(["a", "b", "c", "d"], 300, p=[0.4, 0.3, 0.2, 0.1]),
        _RNG.choice(["a", "b", "c", "d"], 200, p=[0.3, 0.3, 0.3, 0.1]),
    ),
    "new-category": (
        _RNG.choice(["a", "b", "c"], 150),
        np.concatenate([_RNG.choice(["a", "b", "c"], 90), ["zz"] * 5]),
    ),
    "lost-category": (
        np.concatenate([_RNG.choice(["a", "b"], 120), ["gone"] * 30]),
        _RNG.choice(["a", "b"], 100),
    ),
    "pandas-categorical": (
        pd.Categorical(_RNG.choice(["lo", "mid", "hi"], 250), categories=["lo", "mid", "hi", "x"]),
        pd.Categorical(_RNG.choice(["lo", "hi"], 180), categories=["lo", "mid", "hi", "x"]),
    ),
    "mixed-int-str": (  # 1 and "1" are two labels; 0 is first in either sort order
        pd.Series(list(_RNG.choice([0, 1, 2, 3], 100)) + ["1", "two"] * 20, dtype=object),
        pd.Series(list(_RNG.choice([1, 2], 80)) + ["two"] * 30 + [3] * 5, dtype=object),
    ),
    "with-missing": (
        pd.Series(list(_RNG.choice(["x", "y", "z"], 200)) + [None] * 40, dtype=object),
        pd.Series(list(_RNG.choice(["x", "y", "z"], 150)) + [np.nan] * 10, dtype=object),
    ),
    "two-values": (
        _RNG.choice(["yes", "no"], 400, p=[0.7, 0.3]),
        _RNG.choice(["yes", "no"], 300, p=[0.6, 0.4]),
    ),
    "bool": (_RNG.random(500) < 0.3, _RNG.random(400) < 0.45),
    "integer-codes": (_RNG.integers(0, 12, 600), _RNG.integers(0, 10, 300)),
    "rare-categories": (  # shares below 0.0001, and a category each sample lacks
        np.array(["a"] * 15000 + ["b"] * 4998 + ["rare"] * 2),
        np.array(["a"] * 12000 + ["b"] * 7999 + ["new"]),
    ),
}

_NUMERIC_CASES: dict[str, tuple[Any, Any]] = {
    "few-floats": (
        _RNG.choice([-1.5, 0.25, 2.0, 7.75], 300),
        _RNG.choice([-1.5, 0.25, 2.0, 9.0], 250),
    ),
    "few-integers": (_RNG.integers(0, 15, 400), _RNG.integers(2, 18, 350)),
    "exactly-20-values": (np.arange(400) % 20 * 1.5, _RNG.integers(0, 25, 300) * 1.5),
    "21-values-histogram": (np.arange(420) % 21 * 0.5 + 3.0, _RNG.integers(0, 30, 300) * 0.5),
    "normal": (_RNG.normal(0, 1, 700), _RNG.normal(0.2, 1.1, 500)),
    "lognormal-with-missing": (
        np.concatenate([_RNG.lognormal(0, 1.5, 900), [np.nan, np.inf] * 20]),
        np.concatenate([_RNG.lognormal(0.1, 1.5, 600), [np.nan, -np.inf] * 7]),
    ),
    "negative-floats": (-_RNG.exponential(3.0, 500) - 1, -_RNG.exponential(2.5, 450) - 1),
    "integers-many-values": (_RNG.poisson(40, 800), _RNG.poisson(43, 600)),
    "integers-wide-ints": (_RNG.integers(0, 10**6, 500), _RNG.integers(10**5, 10**6, 500)),
    "bimodal": (
        np.concatenate([_RNG.normal(-5, 1, 300), _RNG.normal(5, 1, 300)]),
        _RNG.normal(0, 4, 400),
    ),
    "pandas-nullable": (
        pd.Series(list(_RNG.integers(0, 50, 300)) + [None] * 9, dtype="Int64"),
        pd.Series(list(_RNG.integers(5, 60, 200)) + [None] * 3, dtype="Int64"),
    ),
}


@pytest.mark.parametrize("name", ["chisquare", "z", "jensenshannon", "psi"])
@pytest.mark.parametrize("case", sorted(_CATEGORICAL_CASES))
def test_categorical_statistic_matches_evidently(name: str, case: str) -> None:
    reference, current = _CATEGORICAL_CASES[case]
    _assert_matches_evidently(name, reference, current, "categorical")


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("case", sorted(_NUMERIC_CASES))
def test_numeric_statistic_matches_evidently(name: str, case: str) -> None:
    reference, current = _NUMERIC_CASES[case]
    _assert_matches_evidently(name, reference, current, "numeric")


def test_histogram_path_starts_above_20_reference_values() -> None:
    # identical shares per value but not per Sturges bin: the two paths give different numbers
    few = _samples(np.arange(20.0), np.arange(20.0)[::2], "numeric")
    many = _samples(np.arange(21.0), np.arange(21.0)[::2], "numeric")
    assert few.n_unique_reference == 20
    assert many.n_unique_reference == 21
    for samples, values in ((few, 20), (many, 21)):
        ref, cur = np.arange(float(values)), np.arange(float(values))[::2]
        expected = ev_jensenshannon(pd.Series(ref), pd.Series(cur), numeric=True)
        assert _close(_method("jensenshannon").compute(samples), expected)


def test_integer_histogram_bins_are_at_least_one_wide() -> None:
    # 21 whole numbers over 1.2 million values: Sturges asks for bins 0.94 wide, and numpy
    # widens them to 1 for an integer dtype (20 bins) but not for floats (22 bins)
    reference = np.arange(600_000) % 21
    current = np.minimum(np.arange(600_000) % 25, 20)  # 20 is five times as common
    assert len(np.histogram_bin_edges(np.concatenate([reference, current]), "sturges")) == 21
    for values in ((reference, current), (reference * 1.0, current * 1.0)):
        for name in ("jensenshannon", "psi"):
            _assert_matches_evidently(name, *values, "numeric")
    as_int = _compute("jensenshannon", reference, current, "numeric")
    as_float = _compute("jensenshannon", reference * 1.0, current * 1.0, "numeric")
    assert as_int != pytest.approx(as_float, rel=1e-6)


def test_psi_of_one_sided_values_is_finite() -> None:
    reference = ["a"] * 50 + ["b"] * 50
    current = ["b"] * 60 + ["c"] * 40
    value = _compute("psi", reference, current, "categorical")
    assert math.isfinite(value)
    assert _close(value, ev_statistic("psi", reference, current, numeric=False))


def test_chisquare_of_a_new_category_is_zero() -> None:
    assert _compute("chisquare", ["a", "b"] * 30, ["a", "b", "new"] * 10, "categorical") == 0.0


def test_z_of_one_shared_value_is_one() -> None:
    assert _compute("z", ["a"] * 10, ["a"] * 7, "categorical") == 1.0
    assert _compute("z", [3.0] * 10, [3.0] * 4, "numeric") == 1.0


def test_z_of_disjoint_single_values() -> None:
    _assert_matches_evidently("z", ["a"] * 10, ["b"] * 12, "categorical")


def test_identical_samples_do_not_drift() -> None:
    values = _RNG.normal(size=300)
    for name in BUILTINS:
        method = _method(name)
        value = method.compute(_samples(values, values, "numeric"))
        assert not method.drifted(value, method.default_threshold), name


_small_ints = hnp.arrays(np.int64, st.integers(1, 120), elements=st.integers(-3, 60))


@given(reference=_small_ints, current=_small_ints, offset=st.integers(0, 100))
def test_integer_statistics_match_evidently(
    reference: np.ndarray, current: np.ndarray, offset: int
) -> None:
    reference, current = reference - offset, current + offset
    for name in BUILTINS:
        _assert_matches_evidently(name, reference, current, "numeric")


_continuous = st.floats(-1e6, 1e6)


@given(
    reference=hnp.arrays(np.float64, st.integers(21, 150), elements=_continuous, unique=True),
    current=hnp.arrays(np.float64, st.integers(1, 150), elements=_continuous),
)
def test_histogram_statistics_match_evidently(reference: np.ndarray, current: np.ndarray) -> None:
    for name in ("jensenshannon", "psi"):
        _assert_matches_evidently(name, reference, current, "numeric")


@given(
    reference=st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=60),
    current=st.lists(st.sampled_from(["a", "b", "c", "d", "f"]), min_size=1, max_size=60),
)
def test_categorical_statistics_match_evidently_everywhere(
    reference: list[str], current: list[str]
) -> None:
    for name in ("chisquare", "z", "jensenshannon", "psi"):
        _assert_matches_evidently(name, reference, current, "categorical")


def test_histogram_of_negative_integers_matches_evidently() -> None:
    reference = np.arange(-20, 5)
    current = np.array([-20, -16, -12, -8, -4, 0, 4])
    expected = ev_statistic("jensenshannon", reference, current, numeric=True)
    assert expected < 0.1  # Evidently: no drift
    report = detect_drift(*_frames(reference, current), options=DriftSpec(method="jensenshannon"))
    assert _close(_only(report).value or 0.0, expected)
    assert _only(report).drifted is False


def test_histogram_bin_count_of_a_power_of_two_matches_evidently() -> None:
    reference = np.round(np.linspace(-2.2, 2.0, 32), 2)
    current = np.round(np.linspace(-1.1, 1.0, 32), 2)
    _assert_matches_evidently("jensenshannon", reference, current, "numeric")


# -- Wasserstein and KS against scipy ---------------------------------------------------------

_heavy = st.sampled_from(["normal", "cauchy", "ties", "pareto"])


def _draw(kind: str, seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(rng.uniform(-3, 3), rng.uniform(0.1, 5), size)
    if kind == "cauchy":
        return rng.standard_cauchy(size) * 10
    if kind == "pareto":
        return -rng.pareto(1.2, size)
    return rng.integers(-4, 5, size) * 0.5


@given(
    kinds=st.tuples(_heavy, _heavy),
    seed=st.integers(0, 2**32 - 1),
    sizes=st.tuples(st.integers(1, 400), st.integers(1, 400)),
)
def test_wasserstein_equals_scipy(
    kinds: tuple[str, str], seed: int, sizes: tuple[int, int]
) -> None:
    reference = _draw(kinds[0], seed, sizes[0])
    current = _draw(kinds[1], seed + 1, sizes[1])
    norm = max(float(np.std(reference)), 0.001)
    expected = stats.wasserstein_distance(reference, current) / norm
    actual = _compute("wasserstein", reference, current, "numeric")
    # the sample tag may move each value by one unit in the last place
    ulp = 4 * np.spacing(np.max(np.abs(np.concatenate([reference, current]))))
    assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=float(ulp) / norm)


@given(
    reference=hnp.arrays(np.float64, st.integers(1, 80), elements=_continuous),
    current=hnp.arrays(np.float64, st.integers(1, 80), elements=_continuous),
)
def test_wasserstein_equals_scipy_on_any_floats(reference: np.ndarray, current: np.ndarray) -> None:
    norm = max(float(np.std(reference)), 0.001)
    expected = stats.wasserstein_distance(reference, current) / norm
    actual = _compute("wasserstein", reference, current, "numeric")
    ulp = 4 * np.spacing(np.max(np.abs(np.concatenate([reference, current]))))
    scale = np.ptp(np.concatenate([reference, current]))
    assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=float(ulp + 1e-12 * scale) / norm)


def test_wasserstein_norm_has_a_floor() -> None:
    # a constant reference has std 0: Evidently divides by 0.001 instead
    value = _compute("wasserstein", [2.0] * 10, [2.5] * 10, "numeric")
    assert value == pytest.approx(0.5 / 0.001)


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")
@given(
    kinds=st.tuples(_heavy, _heavy),
    seed=st.integers(0, 2**32 - 1),
    sizes=st.tuples(st.integers(1, 300), st.integers(1, 300)),
)
def test_ks_equals_scipy(kinds: tuple[str, str], seed: int, sizes: tuple[int, int]) -> None:
    reference = _draw(kinds[0], seed, sizes[0])
    current = _draw(kinds[1], seed + 1, sizes[1])
    expected = stats.ks_2samp(reference, current).pvalue
    assert _close(_compute("ks", reference, current, "numeric"), float(expected))


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")
@given(
    reference=hnp.arrays(np.float64, st.integers(1, 60), elements=_continuous),
    current=hnp.arrays(np.float64, st.integers(1, 60), elements=_continuous),
)
def test_ks_equals_scipy_on_any_floats(reference: np.ndarray, current: np.ndarray) -> None:
    expected = stats.ks_2samp(reference, current).pvalue
    assert _close(_compute("ks", reference, current, "numeric"), float(expected))


def test_ks_ignores_missing_values_and_infinities() -> None:
    reference = np.array([0.1, 0.5, np.nan, 0.9, 1.3, np.inf, 2.0])
    current = np.array([1.1, -np.inf, 1.9, 2.2, 3.4])
    expected = stats.ks_2samp(reference[np.isfinite(reference)], current[np.isfinite(current)])
    assert _close(_compute("ks", reference, current, "numeric"), float(expected.pvalue))


# -- the automatic choice ---------------------------------------------------------------------


def _numeric_with(n_reference: int, n_values: int, extra_current: int = 0) -> tuple[Any, Any]:
    """A reference of ``n_reference`` values drawn from ``n_values`` distinct ones (and a NaN),
    and a current sample that adds ``extra_current`` values the reference lacks."""
    reference = np.append(np.arange(n_reference) % n_values * 1.5, np.nan)
    current = np.concatenate([np.arange(50) % n_values * 1.5, 1000.0 + np.arange(extra_current)])
    return reference, current


@pytest.mark.parametrize(
    ("n_reference", "n_values", "extra", "expected"),
    [
        (1000, 6, 0, "ks"),
        (1000, 5, 0, "chisquare"),
        (1000, 5, 1, "ks"),  # the sixth value only in current
        (1000, 3, 0, "chisquare"),
        (1000, 2, 0, "z"),
        (1000, 2, 1, "chisquare"),
        (1000, 1, 0, "z"),
        (1001, 6, 0, "wasserstein"),
        (1001, 5, 0, "jensenshannon"),
        (1001, 4, 2, "wasserstein"),
        (1001, 2, 0, "jensenshannon"),
        (1001, 1, 0, "jensenshannon"),
        (30, 200, 0, "ks"),
    ],
)
def test_auto_numeric_follows_evidently(
    n_reference: int, n_values: int, extra: int, expected: str
) -> None:
    reference, current = _numeric_with(n_reference, n_values, extra)
    assert ev_default_method(reference, current, numeric=True) == expected
    assert _auto(reference, current, "numeric") == expected


@pytest.mark.parametrize(
    ("n_reference", "n_values", "expected"),
    [
        (1000, 3, "chisquare"),
        (1000, 2, "z"),
        (1000, 8, "chisquare"),
        (1000, 1, "z"),
        (1001, 2, "jensenshannon"),
        (1001, 30, "jensenshannon"),
    ],
)
def test_auto_categorical_follows_evidently(n_reference: int, n_values: int, expected: str) -> None:
    labels = [f"v{i}" for i in range(n_values)]
    reference = [labels[i % n_values] for i in range(n_reference)] + [None] * 3
    current = labels * 3
    assert ev_default_method(reference, current, numeric=False) == expected
    assert _auto(reference, current, "categorical") == expected


def test_auto_counts_reference_rows_after_dropping_missing() -> None:
    values = np.arange(1001) % 50 * 1.0
    with_nan, with_inf = values.copy(), values.copy()
    with_nan[7], with_inf[7] = np.nan, np.inf
    current = np.arange(40.0)
    assert _auto(values, current, "numeric") == "wasserstein"
    assert _auto(with_nan, current, "numeric") == "ks"
    assert _auto(with_inf, current, "numeric") == "ks"
    assert ev_default_method(with_inf, current, numeric=True) == "ks"


@settings(max_examples=60)
@given(
    n_reference=st.integers(990, 1010),
    n_values=st.integers(1, 8),
    current_values=st.integers(1, 8),
    missing=st.integers(0, 12),
    kind=st.sampled_from(["numeric", "categorical"]),
)
def test_auto_matches_evidently_near_the_boundaries(
    n_reference: int, n_values: int, current_values: int, missing: int, kind: ColumnKind
) -> None:
    reference = np.append(np.arange(n_reference) % n_values * 2.0, [np.nan] * missing)
    current = np.arange(60) % current_values * 3.0
    if kind == "categorical":
        reference = pd.Series(reference).map(lambda v: None if np.isnan(v) else f"c{v:g}")
        current = pd.Series(current).map(lambda v: f"c{v:g}")
    assert _auto(reference, current, kind) == ev_default_method(
        reference, current, numeric=kind == "numeric"
    )


def test_auto_counts_negative_zero_as_zero() -> None:
    reference = np.array([-0.0, 1.0] * 20)
    current = np.array([0.0, 1.0] * 20)
    assert ev_default_method(reference, current, numeric=True) == "z"
    assert _auto(reference, current, "numeric") == "z"


# -- verdicts ---------------------------------------------------------------------------------


def test_p_value_drifts_below_threshold_and_ks_at_it() -> None:
    assert _method("ks").drifted(0.05, 0.05)
    assert not _method("ks").drifted(0.050001, 0.05)
    for name in ("chisquare", "z"):
        assert not _method(name).drifted(0.05, 0.05)
        assert _method(name).drifted(0.0499, 0.05)


def test_distance_drifts_at_or_above_threshold() -> None:
    for name in ("wasserstein", "jensenshannon", "psi"):
        assert _method(name).drifted(0.1, 0.1)
        assert not _method(name).drifted(0.0999, 0.1)


def test_nan_statistic_does_not_drift() -> None:
    for name in BUILTINS:
        assert not _method(name).drifted(float("nan"), 0.05)


def test_threshold_equal_to_the_statistic() -> None:
    reference = _RNG.normal(0, 1, 200)
    current = _RNG.normal(0.15, 1, 150)
    ref, cur = _frames(reference, current)
    for name, drifts in (("ks", True), ("wasserstein", True), ("psi", True), ("z", False)):
        value = _only(detect_drift(ref, cur, options=DriftSpec(method=name))).value
        assert value is not None
        assert value > 0
        at = _only(detect_drift(ref, cur, options=DriftSpec(method=name, threshold=value)))
        assert at.threshold == value
        assert at.drifted is drifts, name


def _fixed_method(values: dict[str, float]) -> DriftMethod:
    """A distance that is ``values[column]``, whatever the samples."""
    return DriftMethod(
        name="fixed",
        title="fixed distance",
        kinds=frozenset({"numeric", "categorical"}),
        statistic="distance",
        default_threshold=0.5,
        compute=lambda samples: values[samples.name],
    )


def _fixed_registry(values: dict[str, float]) -> DriftMethods:
    methods = default_drift_methods()
    methods.add(_fixed_method(values))
    return methods


def test_dataset_drifts_at_the_drift_share() -> None:
    values = {"a": 1.0, "b": 0.9, "c": 0.1, "d": 0.0}
    frame = pd.DataFrame({name: [1.0, 2.0, 3.0] for name in values})
    methods = _fixed_registry(values)
    half = detect_drift(frame, frame, options=DriftSpec(method="fixed"), methods=methods)
    assert half.n_drifted == 2
    assert half.share_drifted == 0.5
    assert half.drifted
    more = detect_drift(
        frame, frame, options=DriftSpec(method="fixed", drift_share=0.51), methods=methods
    )
    assert not more.drifted
    assert more.drift_share == 0.51


def test_untested_columns_are_left_out_of_the_share() -> None:
    reference = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0], "gone": [np.nan, np.nan]})
    current = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0], "gone": [1.0, 2.0]})
    values = {"a": 1.0, "b": 0.0, "gone": 1.0}
    report = detect_drift(
        reference, current, options=DriftSpec(method="fixed"), methods=_fixed_registry(values)
    )
    gone = report.column("gone")
    assert gone.drifted is None
    assert gone.method is None
    assert gone.value is None
    assert "not tested" in gone.note
    assert "reference" in gone.note
    assert gone.missing_reference == 1.0
    assert len(report.tested) == 2
    assert report.share_drifted == 0.5
    assert report.drifted


def test_empty_current_sample_is_not_tested() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    current = pd.DataFrame({"x": pd.Series([], dtype=float)})
    report = detect_drift(reference, current)
    assert _only(report).drifted is None
    assert "current sample" in _only(report).note
    assert report.share_drifted == 0.0
    assert not report.drifted


def test_nan_statistic_is_reported_not_drifted() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    report = detect_drift(
        frame,
        frame,
        options=DriftSpec(method="fixed"),
        methods=_fixed_registry({"x": float("nan")}),
    )
    assert math.isnan(_only(report).value or 0.0)
    assert _only(report).drifted is False
    assert len(report.tested) == 1


# -- options ----------------------------------------------------------------------------------


def _two_columns(n: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"num": rng.normal(0, 1, n), "code": rng.integers(0, 8, n)})
    current = pd.DataFrame({"num": rng.normal(0.1, 1, n), "code": rng.integers(0, 8, n)})
    return reference, current


def test_default_thresholds_per_method() -> None:
    expected = {
        "ks": 0.05,
        "chisquare": 0.05,
        "z": 0.05,
        "wasserstein": 0.1,
        "jensenshannon": 0.1,
        "psi": 0.1,
    }
    assert {m.name: m.default_threshold for m in default_drift_methods()} == expected
    reference, current = _two_columns()
    for name, threshold in expected.items():
        result = detect_drift(reference, current, options=DriftSpec(method=name)).column("num")
        assert (result.method, result.threshold) == (name, threshold)


def test_global_method_and_threshold() -> None:
    reference, current = _two_columns()
    report = detect_drift(reference, current, options=DriftSpec(method="psi", threshold=0.3))
    assert [c.method for c in report.columns] == ["psi", "psi"]
    assert [c.threshold for c in report.columns] == [0.3, 0.3]
    assert report.column("num").value == pytest.approx(
        ev_statistic("psi", reference["num"], current["num"], numeric=True), rel=1e-9
    )


def test_column_settings_win_over_global() -> None:
    reference, current = _two_columns()
    options = DriftSpec(
        method="psi",
        threshold=0.3,
        columns={"num": ColumnDriftSpec(method="wasserstein", threshold=0.02)},
    )
    report = detect_drift(reference, current, options=options)
    num, code = report.column("num"), report.column("code")
    assert (num.method, num.threshold, num.statistic) == ("wasserstein", 0.02, "distance")
    assert (code.method, code.threshold) == ("psi", 0.3)
    assert num.value == pytest.approx(
        ev_statistic("wasserstein", reference["num"], current["num"], numeric=True), rel=1e-9
    )


def test_column_threshold_alone_keeps_the_auto_method() -> None:
    reference, current = _two_columns()
    options = DriftSpec(columns={"num": ColumnDriftSpec(threshold=0.5)})
    num = detect_drift(reference, current, options=options).column("num")
    assert (num.method, num.threshold) == ("ks", 0.5)


def test_kind_override_tests_codes_as_categories() -> None:
    reference, current = _two_columns()
    assert detect_drift(reference, current).column("code").method == "ks"
    options = DriftSpec(columns={"code": ColumnDriftSpec(kind="categorical")})
    code = detect_drift(reference, current, options=options).column("code")
    assert code.kind == "categorical"
    assert code.method == "chisquare"
    assert code.value == pytest.approx(
        ev_statistic("chisquare", reference["code"], current["code"], numeric=False), rel=1e-9
    )


def test_kind_override_beats_given_kinds() -> None:
    reference, current = _two_columns()
    options = DriftSpec(columns={"code": ColumnDriftSpec(kind="numeric")})
    report = detect_drift(reference, current, kinds={"code": "categorical"}, options=options)
    assert _only(report).kind == "numeric"


def test_ignore_leaves_a_column_out() -> None:
    reference, current = _two_columns()
    options = DriftSpec(columns={"code": ColumnDriftSpec(ignore=True)})
    report = detect_drift(reference, current, options=options)
    assert [c.column for c in report.columns] == ["num"]
    with pytest.raises(KeyError):
        report.column("code")


def test_kinds_choose_the_columns() -> None:
    reference, current = _two_columns()
    report = detect_drift(reference, current, kinds={"code": "categorical"})
    assert [(c.column, c.kind) for c in report.columns] == [("code", "categorical")]


def test_unknown_method_suggests_a_close_one() -> None:
    reference, current = _two_columns()
    with pytest.raises(SpecError, match=r"unknown drift method 'kss'.*did you mean 'ks'") as e:
        detect_drift(reference, current, options=DriftSpec(method="kss"))
    assert "monitoring.drift" in str(e.value)
    assert "jensenshannon" in str(e.value)  # the known ones are listed


def test_unknown_column_method_names_the_column() -> None:
    reference, current = _two_columns()
    options = DriftSpec(columns={"code": ColumnDriftSpec(method="chisqare")})
    with pytest.raises(SpecError, match=r"monitoring\.drift\.columns\.code") as e:
        detect_drift(reference, current, options=options)
    assert "'chisqare'" in str(e.value)
    assert "did you mean 'chisquare'" in str(e.value)


def test_unknown_method_without_a_close_one() -> None:
    with pytest.raises(SpecError) as e:
        default_drift_methods().get("zzzzzzzz")
    assert "did you mean" not in str(e.value)
    assert "'zzzzzzzz'" in str(e.value)


def test_method_not_for_the_kind() -> None:
    reference = pd.DataFrame({"colour": ["red", "blue"] * 10})
    current = pd.DataFrame({"colour": ["red", "red"] * 10})
    with pytest.raises(SpecError) as e:
        detect_drift(reference, current, options=DriftSpec(method="ks"))
    message = str(e.value)
    assert "'colour'" in message
    assert "'ks'" in message
    assert "categorical" in message
    assert "['chisquare', 'jensenshannon', 'psi', 'z']" in message


def test_column_settings_for_an_unknown_column() -> None:
    reference, current = _two_columns()
    options = DriftSpec(columns={"nope": ColumnDriftSpec(method="ks")})
    with pytest.raises(SpecError, match="nope"):
        detect_drift(reference, current, options=options)


def test_column_missing_from_current() -> None:
    reference, current = _two_columns()
    with pytest.raises(DataError, match="current sample has no column 'code'"):
        detect_drift(reference, current.drop(columns="code"))


def test_column_missing_from_reference() -> None:
    reference, current = _two_columns()
    with pytest.raises(DataError, match="reference sample has no column 'extra'"):
        detect_drift(reference, current, kinds={"extra": "numeric"})


def test_numeric_column_of_text_says_declare_it_categorical() -> None:
    reference = pd.DataFrame({"size": ["small", "large"] * 5})
    current = pd.DataFrame({"size": ["small"] * 10})
    with pytest.raises(DataError, match="size") as e:
        detect_drift(reference, current, kinds={"size": "numeric"})
    assert "kind: categorical" in str(e.value)
    assert "monitoring.drift.columns.size" in str(e.value)


def test_spec_bounds() -> None:
    with pytest.raises(ValueError, match="threshold"):
        DriftSpec(threshold=0.0)
    with pytest.raises(ValueError, match="drift_share"):
        DriftSpec(drift_share=1.5)
    with pytest.raises(ValueError, match="extra"):
        ColumnDriftSpec.model_validate({"methd": "ks"})
    assert MonitoringSpec().drift == DriftSpec()
    assert DriftSpec().method == "auto"
    assert DriftSpec().drift_share == 0.5


# -- the registry -----------------------------------------------------------------------------


def test_default_registry_has_the_six_builtins() -> None:
    methods = default_drift_methods()
    assert sorted(m.name for m in methods) == sorted(BUILTINS)
    assert all(name in methods for name in BUILTINS)
    assert "auto" not in methods
    numeric_only = {m.name for m in methods if m.kinds == {"numeric"}}
    assert numeric_only == {"ks", "wasserstein"}
    p_values = {m.name for m in methods if m.statistic == "p_value"}
    assert p_values == {"ks", "chisquare", "z"}


def test_adding_a_duplicate_name_fails() -> None:
    methods = default_drift_methods()
    with pytest.raises(ValueError, match="'psi' is already registered"):
        methods.add(_method("psi"))


def test_registries_are_independent() -> None:
    extended = _fixed_registry({})
    assert "fixed" in extended
    assert "fixed" not in default_drift_methods()


def _mean_shift(samples: ColumnSamples) -> float:
    return abs(float(np.mean(samples.current) - np.mean(samples.reference))) / max(
        samples.reference_std, 1e-9
    )


def test_a_plugin_method_is_usable_by_name() -> None:
    methods = default_drift_methods()
    methods.add(
        DriftMethod(
            "mean_shift", "mean shift / std", frozenset({"numeric"}), "distance", 0.25, _mean_shift
        )
    )
    reference, current = _two_columns()
    current = current.assign(num=current["num"] + 1.0)
    options = DriftSpec(columns={"num": ColumnDriftSpec(method="mean_shift")})
    report = detect_drift(reference, current, options=options, methods=methods)
    num = report.column("num")
    expected = abs(current["num"].mean() - reference["num"].mean()) / reference["num"].std(ddof=0)
    assert (num.method, num.threshold, num.drifted) == ("mean_shift", 0.25, True)
    assert num.value == pytest.approx(expected, rel=1e-9)
    assert report.column("code").method == "ks"
    with pytest.raises(SpecError, match="mean_shift"):
        detect_drift(reference, current, options=options)  # not in the default registry
    with pytest.raises(SpecError, match="choose one of"):
        detect_drift(
            reference,
            current,
            options=DriftSpec(
                columns={"code": ColumnDriftSpec(method="mean_shift", kind="categorical")}
            ),
            methods=methods,
        )


# -- the report -------------------------------------------------------------------------------


def _mixed_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 200

    def frame(shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.integers(18, 90, n),
                "income": rng.lognormal(10 + shift, 1, n),
                "city": rng.choice(["a", "b", "c"], n),
                "member": rng.random(n) < 0.5,
                "seen": pd.date_range("2024-01-01", periods=n, freq="h"),
                "empty": [np.nan] * n,
            }
        )

    return frame(0.0), frame(1.0)


def test_column_kinds_from_dtypes() -> None:
    reference, _ = _mixed_frames()
    reference = reference.assign(
        label=pd.Categorical(["x"] * len(reference)),
        flag=pd.array([True, None] * (len(reference) // 2), dtype="boolean"),
        tz=pd.date_range("2024-01-01", periods=len(reference), freq="h", tz="UTC"),
        small=reference["age"].astype("int8"),
        nullable=reference["age"].astype("Int64"),
    )
    assert column_kinds(reference) == {
        "age": "numeric",
        "income": "numeric",
        "city": "categorical",
        "member": "categorical",
        "empty": "numeric",
        "label": "categorical",
        "flag": "categorical",
        "small": "numeric",
        "nullable": "numeric",
    }


def test_report_summary_and_lookups() -> None:
    reference, current = _mixed_frames()
    report = detect_drift(reference, current)
    assert [c.column for c in report.columns] == ["age", "income", "city", "member", "empty"]
    assert report.column("income").drifted is True
    assert report.column("income").method == "ks"
    assert report.column("member").method == "z"
    assert report.column("city").method == "chisquare"
    assert report.column("empty").drifted is None
    assert (report.n_reference, report.n_current) == (200, 200)
    assert len(report.tested) == 4
    assert report.n_drifted == sum(1 for c in report.tested if c.drifted)
    assert report.share_drifted == report.n_drifted / 4
    assert report.drifted is (report.share_drifted >= 0.5)
    with pytest.raises(KeyError, match="seen"):
        report.column("seen")


def test_report_to_dict_is_json() -> None:
    reference, current = _mixed_frames()
    report = detect_drift(reference, current)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["n_tested"] == 4
    assert data["n_drifted"] == report.n_drifted
    assert data["drifted"] is report.drifted
    assert data["share_drifted"] == report.share_drifted
    assert data["drift_share"] == 0.5
    assert [c["column"] for c in data["columns"]] == [c.column for c in report.columns]
    income = data["columns"][1]
    assert income["method"] == "ks"
    assert income["statistic"] == "p_value"
    assert income["drifted"] is True
    assert set(income) == set(ColumnDrift.__dataclass_fields__)


def test_report_to_frame_has_a_row_per_column() -> None:
    reference, current = _mixed_frames()
    report = detect_drift(reference, current)
    frame = report.to_frame()
    assert len(frame) == len(report.columns) == 5
    assert frame["column"].tolist() == ["age", "income", "city", "member", "empty"]
    assert frame.set_index("column").loc["income", "method"] == "ks"
    assert {"value", "threshold", "drifted", "n_unique", "note"} <= set(frame.columns)


def test_report_missing_shares() -> None:
    reference = pd.DataFrame({"x": [1.0, np.nan, 2.0, np.inf]})
    current = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, None]})
    result = _only(detect_drift(reference, current))
    assert (result.missing_reference, result.missing_current) == (0.5, 0.2)
    assert (result.n_reference, result.n_current, result.n_unique) == (2, 4, 4)


def test_empty_report() -> None:
    report = DriftReport((), 0.5, 0, 0)
    assert (report.n_drifted, report.share_drifted, report.drifted) == (0, 0.0, False)
    assert json.dumps(report.to_dict())
    assert report.to_frame().empty


# -- end to end -------------------------------------------------------------------------------


def _population(rng: np.random.Generator, n: int, shifted: bool) -> pd.DataFrame:
    shift = 1.0 if shifted else 0.0
    return pd.DataFrame(
        {
            "n0": rng.normal(0, 1, n),
            "n1": rng.normal(0.6 * shift, 1, n),  # shifted mean
            "n2": rng.exponential(2.0, n),
            "n3": rng.normal(10, 1 + 0.9 * shift, n),  # shifted spread
            "n4": rng.uniform(-5, 5, n),
            "n5": rng.poisson(30, n),
            "n6": rng.lognormal(0, 0.5, n),
            "c0": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "c1": rng.random(n) < 0.4,
            "c2": rng.choice(
                ["x", "y", "z", "w"], n, p=[0.1, 0.2, 0.3, 0.4] if shifted else [0.4, 0.3, 0.2, 0.1]
            ),
        }
    )


def test_realistic_drift_finds_exactly_the_shifted_columns() -> None:
    rng = np.random.default_rng(12345)
    reference = _population(rng, 5000, shifted=False)
    current = _population(rng, 5000, shifted=True)
    current.loc[current.index[:100], "n2"] = np.nan
    report = detect_drift(reference, current)
    drifted = {c.column for c in report.columns if c.drifted}
    assert drifted == {"n1", "n3", "c2"}
    for result in report.columns:
        expected = ev_statistic(
            result.method or "",
            reference[result.column],
            current[result.column],
            numeric=result.kind == "numeric",
        )
        assert result.method == ("jensenshannon" if result.kind == "categorical" else "wasserstein")
        assert result.value == pytest.approx(expected, rel=1e-9)
        # a margin on either side of the threshold: the verdict does not hang on the seed
        assert (result.value >= 0.2) if result.drifted else (result.value <= 0.05)
    assert report.column("n2").missing_current == 0.02
    assert report.share_drifted == 0.3
    assert not report.drifted
    shared = detect_drift(reference, current, options=DriftSpec(drift_share=0.3))
    assert shared.drifted


def test_realistic_small_sample_uses_p_values() -> None:
    rng = np.random.default_rng(54321)
    reference = _population(rng, 800, shifted=False)
    current = _population(rng, 800, shifted=True)
    report = detect_drift(reference, current)
    methods = {c.column: c.method for c in report.columns}
    assert methods["n0"] == "ks"
    assert methods["c0"] == "chisquare"
    assert methods["c1"] == "z"
    for name in ("n1", "n3", "c2"):
        assert (report.column(name).value or 1.0) < 1e-6
    for result in report.columns:
        expected = ev_statistic(
            result.method or "",
            reference[result.column],
            current[result.column],
            numeric=result.kind == "numeric",
        )
        assert _close(result.value or 0.0, expected, atol=1e-12)


def test_columns_tested_side_by_side_give_the_same_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shipyard.monitor import _drift

    rng = np.random.default_rng(11)
    reference = pd.DataFrame(
        {f"x{i}": rng.normal(size=3_000) for i in range(6)} | {"c": rng.choice(list("abc"), 3_000)}
    )
    current = pd.DataFrame(
        {f"x{i}": rng.normal(0.1 * i, 1, 2_000) for i in range(6)}
        | {"c": rng.choice(list("abd"), 2_000)}
    )
    alone = detect_drift(reference, current)
    monkeypatch.setattr(_drift, "_THREADS_FROM_ROWS", 0)
    monkeypatch.setattr(_drift.os, "cpu_count", lambda: 4)
    together = detect_drift(reference, current)
    assert together == alone
    assert [c.column for c in together.columns] == [*(f"x{i}" for i in range(6)), "c"]

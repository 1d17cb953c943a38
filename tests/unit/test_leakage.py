"""Leakage guards: target proxies, identifiers, train/holdout overlap, time order, CV folds."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from shipyard.data import LeakageFinding, leakage_warnings

N = 2000


def _frame(seed: int = 0, n: int = N) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "tenure": rng.gamma(2.0, 12.0, size=n),
            "plan": rng.choice(["basic", "plus", "pro"], size=n),
            "calls": rng.poisson(3, size=n),
        }
    )
    logit = 0.05 * x["tenure"] - 0.4 * x["calls"] + (x["plan"] == "pro") * 0.8
    y = pd.Series(np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-logit)), "stay", "churn"))
    return x, y


def _split(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(1).permutation(n)
    return np.sort(order[: n * 4 // 5]), np.sort(order[n * 4 // 5 :])


def _kinds(findings: list[LeakageFinding]) -> list[tuple[str, str | None]]:
    return [(f.kind, f.column) for f in findings]


def test_clean_data_has_no_findings() -> None:
    x, y = _frame()
    train, test = _split()
    assert leakage_warnings(x, y, train, test, task="binary") == []


def test_a_numeric_column_derived_from_the_target_is_a_proxy() -> None:
    x, y = _frame()
    rng = np.random.default_rng(2)
    x["days_since_cancel"] = np.where(y == "churn", rng.uniform(1, 30, N), rng.uniform(-30, 0, N))
    train, test = _split()
    (found,) = leakage_warnings(x, y, train, test, task="binary")
    assert (found.kind, found.column) == ("target_proxy", "days_since_cancel")
    assert found.score >= 0.99
    assert "alone predicts the target for" in found.message
    assert "features.exclude" in found.message
    check = found.to_check()
    assert check.severity == "warning" and check.check == "leakage_target_proxy"
    assert check.to_sentence().startswith("column 'days_since_cancel': alone predicts")


def test_missingness_that_gives_the_target_away_is_a_proxy() -> None:
    x, y = _frame()
    x["cancel_reason"] = np.where(y == "churn", "moved", None)
    train, test = _split()
    assert _kinds(leakage_warnings(x, y, train, test, task="binary")) == [
        ("target_proxy", "cancel_reason")
    ]


def test_a_multiclass_proxy_and_a_regression_proxy() -> None:
    rng = np.random.default_rng(3)
    y = pd.Series(rng.choice(["a", "b", "c", "d"], size=N))
    x = pd.DataFrame({"noise": rng.normal(size=N), "code": y.map(lambda v: f"grp-{v}")})
    train, test = _split()
    assert _kinds(leakage_warnings(x, y, train, test, task="multiclass")) == [
        ("target_proxy", "code")
    ]
    value = pd.Series(rng.normal(100, 20, size=N))
    x = pd.DataFrame({"noise": rng.normal(size=N), "double": value * 2 + 1})
    (found,) = leakage_warnings(x, value, train, test, task="regression")
    assert (found.kind, found.column) == ("target_proxy", "double")
    assert "R^2" in found.message


def test_a_strong_but_honest_feature_is_not_a_proxy() -> None:
    rng = np.random.default_rng(4)
    value = pd.Series(rng.normal(size=N))
    x = pd.DataFrame({"signal": value + rng.normal(scale=0.3, size=N)})  # R^2 about 0.9
    train, test = _split()
    assert leakage_warnings(x, value, train, test, task="regression") == []


def test_a_rare_class_does_not_make_every_column_a_proxy() -> None:
    rng = np.random.default_rng(5)
    y = pd.Series(np.where(rng.uniform(size=N) < 0.995, "ok", "fraud"))
    x = pd.DataFrame({"amount": rng.gamma(2, 50, size=N), "shop": rng.choice(list("abc"), N)})
    train, test = _split()
    assert leakage_warnings(x, y, train, test, task="binary") == []


def test_identifiers_are_their_own_finding_not_proxies() -> None:
    x, y = _frame()
    x["customer_id"] = [f"C{i:06d}" for i in range(N)]
    x["account_no"] = np.arange(N) * 7 + 1000
    x["comment"] = [f"called on day {i} about the bill" for i in range(N)]  # prose, not an id
    x["spend"] = np.random.default_rng(6).integers(0, 10**9, size=N)  # a near-unique amount
    train, test = _split()
    found = leakage_warnings(x, y, train, test, task="binary")
    assert _kinds(found) == [("identifier", "customer_id"), ("identifier", "account_no")]
    assert "looks like an identifier: 1,600 distinct values in 1,600 training rows" in (
        found[0].message
    )


def test_rows_in_both_train_and_holdout_are_counted() -> None:
    x, y = _frame()
    train, test = _split()
    x.iloc[test[:50]] = x.iloc[train[:50]].to_numpy()  # 50 holdout rows copy training rows
    (found,) = leakage_warnings(x, y, train, test, task="binary")
    assert (found.kind, found.column, found.n_rows) == ("overlap", None, 50)
    assert found.score == pytest.approx(50 / len(test))
    assert found.message.startswith("50 of 400 holdout rows (12.5%) have the same feature")


def test_repeats_in_naturally_discrete_data_are_not_overlap() -> None:
    rng = np.random.default_rng(7)
    x = pd.DataFrame({"a": rng.integers(0, 3, N), "b": rng.choice(["x", "y"], N)})
    y = pd.Series(rng.choice(["p", "q"], N))
    train, test = _split()
    assert leakage_warnings(x, y, train, test, task="binary") == []


def test_a_random_split_of_timed_rows_breaks_time_order() -> None:
    x, y = _frame()
    x["signup"] = pd.date_range("2024-01-01", periods=N, freq="h")
    train, test = _split()  # random: training rows from after the holdout's start
    found = leakage_warnings(x, y, train, test, task="binary", time_column="signup")
    assert _kinds(found) == [("time_order", "signup")]
    assert "later in 'signup' than the earliest holdout row" in found[0].message
    assert "split.strategy: time" in found[0].message


def test_a_time_split_is_clean_and_its_folds_are_checked() -> None:
    x, y = _frame()
    times = pd.Series(pd.date_range("2024-01-01", periods=N, freq="h").astype(str))
    train, test = np.arange(1600), np.arange(1600, N)
    assert leakage_warnings(x, y, train, test, task="binary", times=times) == []
    ordered = [(np.arange(0, k), np.arange(k, k + 400)) for k in (400, 800, 1200)]
    shuffled = [*ordered, (np.arange(400, 1600), np.arange(0, 400))]  # validates on the past
    assert leakage_warnings(x, y, train, test, task="binary", times=times, folds=ordered) == []
    (found,) = leakage_warnings(x, y, train, test, task="binary", times=times, folds=shuffled)
    assert (found.kind, found.n_rows) == ("fold_order", 1200)
    assert found.message.startswith("1 of 4 CV folds (fold 4) train on rows later")


def test_fast_on_fifty_thousand_rows_by_fifty_columns() -> None:
    rng = np.random.default_rng(8)
    n = 50_000
    columns: dict[str, object] = {f"n{i}": rng.normal(size=n) for i in range(40)}
    columns.update({f"c{i}": rng.choice(["a", "b", "c", "d", "e"], size=n) for i in range(10)})
    x = pd.DataFrame(columns)
    y = pd.Series(rng.choice(["yes", "no"], size=n))
    order = rng.permutation(n)
    started = time.perf_counter()
    leakage_warnings(x, y, order[:40_000], order[40_000:], task="binary")
    assert time.perf_counter() - started < 5  # about a second on a laptop core

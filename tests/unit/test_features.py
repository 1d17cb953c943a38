"""Feature pipelines built from a Signature, and sklearn's contract for our transformers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from shipyard.data import ColumnSchema, Signature
from shipyard.errors import TrainingError
from shipyard.features import (
    MISSING_CATEGORY,
    DatetimeFeatures,
    NonNegativeTransform,
    build_features,
    native_category_columns,
)
from shipyard.spec import FeaturesSpec


def _sig(*cols: ColumnSchema) -> Signature:
    return Signature(inputs=cols)


def _col(name: str, kind: str, **kw: object) -> ColumnSchema:
    return ColumnSchema(name=name, kind=kind, dtype="x", nullable=True, **kw)  # type: ignore[arg-type]


FRAME = pd.DataFrame(
    {
        "n": [1.0, np.nan, 3.0, 4.0],
        "b": [1.0, 0.0, np.nan, 1.0],
        "c": np.array(["a", "b", np.nan, "a"], dtype=object),
        "d": pd.to_datetime(["2024-01-01", "2024-02-03", None, "2024-12-31"]),
        "s": np.array(["free text", "more", "x", "y"], dtype=object),
    }
)
SIG = _sig(
    _col("n", "number"),
    _col("b", "boolean"),
    _col("c", "category", categories=("a", "b")),
    _col("d", "datetime"),
    _col("s", "string"),
)


def test_build_features_transforms_every_kind() -> None:
    ct = build_features(SIG)
    out = ct.fit_transform(FRAME)
    names = list(ct.get_feature_names_out())
    assert out.shape[0] == 4
    assert not np.isnan(out).any()
    assert "numeric__n" in names and "numeric__missingindicator_n" in names
    assert {"category__c_a", "category__c_b", f"category__c_{MISSING_CATEGORY}"} <= set(names)
    assert "datetime__d_year" in names and "datetime__d_day_of_week" in names
    assert not any(n.startswith(("s", "category__s")) for n in names)  # free text is dropped


def test_unknown_category_is_ignored_at_transform() -> None:
    ct = build_features(SIG).fit(FRAME)
    new = FRAME.iloc[:1].copy()
    new["c"] = np.array(["zzz"], dtype=object)
    row = ct.transform(new)
    names = list(ct.get_feature_names_out())
    cat_cols = [i for i, n in enumerate(names) if n.startswith("category__")]
    assert row[0, cat_cols].sum() == 0


def test_native_categories_are_the_first_columns_as_category_numbers() -> None:
    """For an estimator that splits on categories itself (LightGBM): one column per category
    or code-like string input, first, numbered in sorted order; missing is a category of its
    own and an unseen one is -1 (LightGBM's missing); the other kinds as before."""
    assert native_category_columns(SIG) == ["c", "s"]
    ct = build_features(SIG, native_categories=True)
    out = ct.fit_transform(FRAME)
    names = list(ct.get_feature_names_out())
    assert names[:2] == ["native_category__c", "native_category__s"]
    assert not any(n.startswith("category__") for n in names)  # no one-hot
    assert "numeric__n" in names and "datetime__d_year" in names
    order = sorted(["a", "b", MISSING_CATEGORY])  # numbered in sorted order
    assert list(out[:, 0]) == [order.index(v) for v in ["a", "b", MISSING_CATEGORY, "a"]]
    assert list(out[:, 1]) == [0.0, 1.0, 2.0, 3.0]  # "free text" < "more" < "x" < "y"
    new = FRAME.iloc[:1].copy()
    new["c"] = np.array(["never seen"], dtype=object)
    assert ct.transform(new)[0, 0] == -1
    # an option that names a column takes it out of the category numbers
    options = FeaturesSpec(target_encode=["s"])
    assert native_category_columns(SIG, options) == ["c"]
    ct = build_features(SIG, options, task="regression", native_categories=True)
    frame = pd.concat([FRAME] * 3, ignore_index=True)  # enough rows for the encoder's folds
    names = list(ct.fit(frame, np.arange(12.0)).get_feature_names_out())
    assert names[0] == "native_category__c" and "target__s" in names


def test_only_free_text_is_an_error() -> None:
    with pytest.raises(TrainingError, match=r"no usable feature columns.*features\.text"):
        build_features(_sig(_col("s", "string")))


def test_the_old_call_and_no_options_build_the_same_columns() -> None:
    from shipyard.spec import FeaturesSpec

    old = build_features(SIG).fit(FRAME)
    new = build_features(SIG, FeaturesSpec(), task="binary", seed=0).fit(FRAME)
    assert list(old.get_feature_names_out()) == list(new.get_feature_names_out())


def test_datetime_features_parts() -> None:
    frame = pd.DataFrame({"d": pd.to_datetime(["2024-03-05 10:30", None])})
    out = DatetimeFeatures(parts=("year", "month", "hour", "minute")).fit_transform(frame)
    assert out[0].tolist() == [2024.0, 3.0, 10.0, 30.0]
    assert np.isnan(out[1]).all()


def test_datetime_features_rejects_unknown_part() -> None:
    with pytest.raises(ValueError, match="unknown datetime parts"):
        DatetimeFeatures(parts=("century",)).fit(
            pd.DataFrame({"d": pd.to_datetime(["2024-01-01"])})
        )


@parametrize_with_checks(
    [DatetimeFeatures(), NonNegativeTransform(func="log"), NonNegativeTransform(func="sqrt")]
)
def test_sklearn_estimator_contract(estimator: object, check: object) -> None:
    check(estimator)  # type: ignore[operator]

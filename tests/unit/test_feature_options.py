"""Feature options (features.transforms, bins, target_encode, text, select): what they build,
that what learns from y is fitted inside each fold, their errors, and their ONNX export."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from shipyard.data import ColumnSchema, Signature, build_signature, coerce_frame
from shipyard.errors import DataError, TrainingError
from shipyard.features import NonNegativeTransform, build_features, check_feature_options
from shipyard.model import OnnxRuntime, SklearnRuntime, compare_predictions
from shipyard.spec import FeaturesSpec, SelectSpec
from shipyard.spec._loader import load_spec
from shipyard.train._onnx import OnnxConversionError, convert_to_onnx

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _col(name: str, kind: str, **kw: object) -> ColumnSchema:
    return ColumnSchema(name=name, kind=kind, dtype="x", nullable=True, **kw)


def _binary(*cols: ColumnSchema) -> Signature:
    return Signature(inputs=cols, target=_col("y", "category"), classes=("no", "yes"))


def _frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "amount": np.where(rng.random(n) < 0.1, np.nan, rng.exponential(10, n)),
            "x": np.where(rng.random(n) < 0.1, np.nan, x),
            "b": rng.normal(size=n),
            "city": np.array([f"c{i}" for i in rng.integers(0, 30, n)], dtype=object),
            "colour": rng.choice(np.array(["red", "blue", None], dtype=object), n),
        }
    )
    y = pd.Series(np.where(x + rng.normal(size=n) > 0, "yes", "no"), name="y")
    return frame, y


SIG = _binary(
    _col("amount", "number", minimum=0.0),
    _col("x", "number"),
    _col("b", "number"),
    _col("city", "string"),
    _col("colour", "category", categories=("blue", "red")),
)


def _names(transformer: object) -> list[str]:
    return [str(n) for n in transformer.get_feature_names_out()]  # type: ignore[attr-defined]


# --- what each option builds --------------------------------------------------------------


def test_transforms_make_their_columns() -> None:
    frame, y = _frame()
    options = FeaturesSpec(transforms={"amount": "log", "x": "yeo-johnson", "b": "quantile"})
    ct = build_features(SIG, options, task="binary")
    out = ct.fit_transform(frame, y)
    names = _names(ct)
    assert {"log__amount", "log__missingindicator_amount", "yeo_johnson__x"} <= set(names)
    assert "quantile__b" in names and "numeric__b" not in names
    assert not np.isnan(out).any()
    # log is log1p, before the imputer and the scaler: the ranks are those of log1p(amount)
    logged = out[:, names.index("log__amount")]
    present = frame["amount"].notna().to_numpy()
    assert np.corrcoef(logged[present], np.log1p(frame["amount"][present]))[0, 1] > 0.999
    # quantile: a normal distribution
    assert abs(float(np.median(out[:, names.index("quantile__b")]))) < 0.1


def test_log_refuses_negative_training_values_naming_the_column() -> None:
    frame = pd.DataFrame({"debt": [1.0, -2.5, 3.0], "ok": [0.0, 1.0, np.nan]})
    with pytest.raises(ValueError, match=r"'debt' \(minimum -2.5\).*yeo-johnson"):
        NonNegativeTransform(func="log").fit(frame)
    fitted = NonNegativeTransform(func="sqrt").fit(frame[["ok"]])
    out = fitted.transform(pd.DataFrame({"ok": [-4.0, 4.0, np.nan]}))  # clipped at prediction
    assert out[0, 0] == 0.0 and out[1, 0] == 2.0 and np.isnan(out[2, 0])


def test_log_on_negative_data_is_a_training_error_naming_the_option() -> None:
    sig = _binary(_col("debt", "number", minimum=-3.0))
    problems = check_feature_options(sig, FeaturesSpec(transforms={"debt": "log"}))
    assert [str(p) for p in problems] == [
        "features.transforms.debt: column 'debt' has negative values (minimum -3) and the "
        "'log' transform (log1p) needs values >= 0: use 'yeo-johnson', which takes any sign, "
        "or fix the data"
    ]


def test_bins_one_hot_each_interval_and_flag_missing_values() -> None:
    frame, y = _frame()
    options = FeaturesSpec(bins={"x": 4, "b": {"bins": 3, "strategy": "uniform"}})
    ct = build_features(SIG, options, task="binary")
    out = ct.fit_transform(frame, y)
    names = _names(ct)
    x_bins = [n for n in names if n.startswith("bins_quantile__x_")]
    b_bins = [n for n in names if n.startswith("bins_uniform__b_")]
    assert len(x_bins) == 4 and len(b_bins) == 3
    assert {"bins_missing__missingindicator_x", "bins_missing__missingindicator_b"} <= set(names)
    # every row falls in exactly one interval of each column (missing x: the median's)
    assert (out[:, [names.index(n) for n in x_bins]].sum(axis=1) == 1).all()
    missing = out[:, names.index("bins_missing__missingindicator_x")]
    assert missing.sum() == frame["x"].isna().sum()


def test_select_keeps_k_features() -> None:
    frame, y = _frame()
    # k = 500: more than there are, so all of them
    for method, k in (("mutual_info", 3), ("model", 2), ("model", 500)):
        for linear in (False, True):
            options = FeaturesSpec(select=SelectSpec(method=method, k=k))
            pipe = build_features(SIG, options, task="binary", linear=linear)
            assert isinstance(pipe, Pipeline)
            assert [name for name, _ in pipe.steps] == ["columns", "select"]
            out = pipe.fit_transform(frame, y)
            n_all = len(_names(pipe.named_steps["columns"]))
            assert out.shape[1] == min(k, n_all)
    variance = build_features(SIG, FeaturesSpec(select={"method": "variance"}), task="binary")
    constant = frame.assign(b=1.0)
    kept = _names(variance.fit(constant, y))
    assert "numeric__b" not in kept and "numeric__x" in kept


def test_selection_by_model_finds_the_informative_feature() -> None:
    frame, y = _frame(600)
    regression = Signature(inputs=SIG.inputs, target=_col("t", "number"))
    cases = (
        (SIG, "binary", y, True, "numeric__x"),  # y follows x
        (regression, "regression", frame["b"] * 3, False, "numeric__b"),
    )
    for sig, task, target, linear, expected in cases:
        options = FeaturesSpec(select={"method": "model", "k": 1})
        pipe = build_features(sig, options, task=task, linear=linear).fit(frame, target)
        assert _names(pipe) == [expected]


# --- fitted inside each fold ---------------------------------------------------------------


def _high_cardinality(n: int, seed: int, informative: bool) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, n // 3, n)  # about 3 rows per value
    effect = rng.normal(size=n // 3)[codes] if informative else 0.0
    y = np.where(effect + rng.normal(size=n) * (0.5 if informative else 1.0) > 0, "yes", "no")
    frame = pd.DataFrame({"id": np.array([f"u{c}" for c in codes], dtype=object)})
    return frame, pd.Series(y, name="y")


@pytest.mark.parametrize("informative", [False, True])
def test_target_encoding_is_fitted_inside_each_fold(informative: bool) -> None:
    frame, y = _high_cardinality(900, seed=3, informative=informative)
    sig = _binary(_col("id", "string"))
    features = build_features(sig, FeaturesSpec(target_encode=["id"]), task="binary")
    pipe = Pipeline([("features", features), ("model", LogisticRegression())])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    auc = cross_val_score(pipe, frame, y, cv=folds, scoring="roc_auc").mean()
    if informative:
        assert auc > 0.7
    else:  # pure noise: chance, as the held-out folds' values were never seen with their y
        assert abs(auc - 0.5) < 0.07
        # the cross-fitted training encoding does not leak either: a model of it is chance
        encoded = features.fit_transform(frame, y)
        fit = LogisticRegression().fit(encoded, y)
        assert fit.score(encoded, y) < 0.6


def test_target_encoding_of_a_regression_and_unseen_values() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"g": np.array([f"g{i % 20}" for i in range(400)], dtype=object)})
    y = pd.Series(np.array([i % 20 for i in range(400)], dtype=float) + rng.normal(size=400))
    sig = Signature(inputs=(_col("g", "category"),), target=_col("y", "number"))
    pipe = Pipeline(
        [("features", build_features(sig, FeaturesSpec(target_encode=["g"]))), ("m", Ridge())]
    ).fit(frame, y)
    unseen = pd.DataFrame({"g": np.array(["g3", "new", None], dtype=object)})
    predicted = pipe.predict(unseen)
    assert abs(predicted[0] - 3) < 1.0 and abs(predicted[1] - y.mean()) < 1.5


# --- free text -----------------------------------------------------------------------------

_GOOD = ["great", "excellent", "lovely", "tasty", "perfect", "fresh", "delicious", "favourite"]
_BAD = ["awful", "stale", "broken", "bland", "terrible", "soggy", "disappointing", "rancid"]
_NEUTRAL = (
    "the a this box arrived bag coffee tea snack price order shipping we my our it was ordered "
    "again flavour size pack bought store amazon kids office morning cup brand"
)


def _reviews(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Short product reviews whose sentiment words say the label 85% of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) > 0.5
    texts: list[str | None] = []
    for good in labels:
        said = good if rng.random() < 0.85 else not good
        words = list(rng.choice(_NEUTRAL.split(), 8)) + list(rng.choice(_GOOD if said else _BAD, 2))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + "!")
    texts[::37] = [None] * len(texts[::37])  # some reviews are missing
    frame = pd.DataFrame(
        {"review": np.array(texts, dtype=object), "stars_shown": rng.normal(size=n)}
    )
    return frame, pd.Series(np.where(labels, "yes", "no"), name="y")


def test_tf_idf_of_free_text_beats_dropping_it() -> None:
    frame, y = _reviews(400, seed=1)
    sig = _binary(_col("review", "string"), _col("stars_shown", "number"))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)

    def score(options: FeaturesSpec | None) -> float:
        features = build_features(sig, options, task="binary")
        pipe = Pipeline([("features", features), ("model", LogisticRegression())])
        return float(cross_val_score(pipe, frame, y, cv=folds, scoring="accuracy").mean())

    dropped = score(None)
    with_text = score(FeaturesSpec(text={"review": {"min_df": 2, "ngram_max": 1}}))
    assert dropped < 0.6 < 0.75 < with_text
    ct = build_features(sig, FeaturesSpec(text=["review"]), task="binary").fit(frame, y)
    assert "text_review__great" in _names(ct)
    assert sp.issparse(ct.transform(frame))  # TF-IDF stays sparse, unless asked for dense
    dense = build_features(sig, FeaturesSpec(text=["review"]), dense=True).fit(frame, y)
    assert isinstance(dense.transform(frame), np.ndarray)


def _spec(tmp_path: Path, features: str) -> object:
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        "name: demo\ndata:\n  source: {type: csv, path: data.csv}\n  target: y\n" + features
    )
    return load_spec(path)


def test_build_signature_keeps_declared_text_as_string_inputs(tmp_path: Path) -> None:
    frame, y = _reviews(200, seed=2)
    frame["shop"] = np.array([f"shop {i % 30}" for i in range(200)], dtype=object)
    frame["user"] = np.array([f"user {i}" for i in range(200)], dtype=object)
    frame["y"] = y
    plain = build_signature(frame, _spec(tmp_path, ""), "binary")  # type: ignore[arg-type]
    assert plain.input_names == ["stars_shown", "shop"]  # free text left out
    features = "features:\n  text: [review, shop]\n  target_encode: [user]\n"
    sig = build_signature(frame, _spec(tmp_path, features), "binary")  # type: ignore[arg-type]
    assert sig.input_names == ["review", "stars_shown", "shop", "user"]
    assert {c.name: c.kind for c in sig.inputs if c.kind == "string"}.keys() == {
        "review",
        "shop",  # inferred as a category, read as text because it is declared as text
        "user",
    }
    with pytest.raises(DataError, match=r"'reveiw' \(.*shipyard.yaml:6 \(features.text"):
        build_signature(frame, _spec(tmp_path, "features:\n  text: [reveiw]\n"), "binary")  # type: ignore[arg-type]


# --- errors -------------------------------------------------------------------------------


def test_misapplied_options_name_their_fields() -> None:
    options = FeaturesSpec(
        transforms={"colour": "log", "nope": "sqrt"},
        bins={"city": 3},
        target_encode=["x", "y"],
        text={"colour": {}},
    )
    problems = check_feature_options(SIG, options)
    fields = [p.dotted for p in problems]
    assert fields == [
        "features.transforms.colour",
        "features.transforms.nope",
        "features.bins.city",
        "features.target_encode[0]",
        "features.target_encode[1]",
        "features.text.colour",
    ]
    messages = [p.message for p in problems]
    assert "'colour' is a category column; the 'log' transform applies to number" in messages[0]
    assert "'nope' is not a model input" in messages[1]
    assert "'city' is a string column; binning applies to number" in messages[2]
    assert "'x' is a number column; target encoding applies to category" in messages[3]
    assert "'y' is the target" in messages[4]
    assert "TF-IDF applies to free-text columns" in messages[5]
    assert problems[0].field == ("features", "transforms", "colour")  # for spec.locate
    with pytest.raises(TrainingError, match=r"features\.transforms\.colour: .*; features\.t"):
        build_features(SIG, options)
    assert check_feature_options(SIG, None) == []
    assert check_feature_options(SIG, FeaturesSpec(text=[], target_encode=["city"])) == []


def test_selection_needs_a_task() -> None:
    sig = Signature(inputs=SIG.inputs)  # no target, no classes
    with pytest.raises(TrainingError, match="needs the task"):
        build_features(sig, FeaturesSpec(select={"method": "mutual_info", "k": 2}))
    build_features(sig, FeaturesSpec(select={"method": "variance"}))  # learns nothing from y


# --- the fitted pipeline: clone, pickle, ONNX ----------------------------------------------

ALL_OPTIONS = FeaturesSpec(
    transforms={"amount": "log", "x": "yeo-johnson"},
    bins={"b": 4},
    target_encode=["city"],
    select={"method": "model", "k": 6},
)


def test_a_pipeline_with_every_option_clones_and_pickles() -> None:
    frame, y = _frame()
    options = ALL_OPTIONS.model_copy(update={"transforms": {"amount": "sqrt", "x": "quantile"}})
    pipe = Pipeline(
        [("features", build_features(SIG, options, task="binary")), ("m", LogisticRegression())]
    )
    fitted = clone(pipe).fit(frame, y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(frame), fitted.predict_proba(frame))
    refit = clone(fitted).fit(frame, y)  # a clone of a fitted pipeline is unfitted and refits
    np.testing.assert_allclose(refit.predict_proba(frame), fitted.predict_proba(frame))


def _check_onnx(pipe: Pipeline, sig: Signature, task: str, frame: pd.DataFrame) -> float:
    classes = None if task == "regression" else [str(c) for c in pipe.classes_]
    onnx = OnnxRuntime(convert_to_onnx(pipe, sig), sig, task, classes)
    odd = {"amount": -3.0, "x": 1e4, "b": -1e6, "city": "never seen", "colour": None}
    blank = pd.DataFrame([dict.fromkeys(sig.input_names), odd])
    rows = pd.concat([frame, coerce_frame(blank, sig)], ignore_index=True)
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    reference = SklearnRuntime(pipe, sig, task).predict_frame(rows)
    worst = 0.0
    for got in (onnx.predict_frame(rows), onnx.predict_records(records)):  # type: ignore[arg-type]
        check = compare_predictions(reference, got, tolerance=1e-4)
        assert check.ok, check.reason
        worst = max(worst, check.max_abs_diff)
    return worst


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_onnx_reproduces_the_options_it_converts(task: str) -> None:
    frame, y = _frame()
    sig, target, model = SIG, y, LogisticRegression()
    if task == "regression":
        sig = Signature(inputs=SIG.inputs, target=_col("t", "number"))
        target, model = frame["b"] * 2 + frame["x"].fillna(0), Ridge()
    features = build_features(sig, ALL_OPTIONS, task=task, linear=True)
    pipe = Pipeline([("features", features), ("model", model)]).fit(frame, target)
    _check_onnx(pipe, sig, task, frame)
    sqrt = FeaturesSpec(transforms={"amount": "sqrt"}, select={"method": "mutual_info", "k": 4})
    pipe = Pipeline([("features", build_features(sig, sqrt, task=task)), ("model", model)])
    _check_onnx(pipe.fit(frame, target), sig, task, frame)


def test_onnx_refuses_what_it_cannot_reproduce() -> None:
    frame, y = _frame()
    text, _ = _reviews(len(frame), seed=0)
    frame["review"] = text["review"]
    sig = _binary(*SIG.inputs, _col("review", "string"))
    refused = {
        "TF-IDF text features .*review": FeaturesSpec(text=["review"]),
        "quantile transform to a normal": FeaturesSpec(transforms={"x": "quantile"}),
    }
    for reason, options in refused.items():
        pipe = Pipeline([("f", build_features(sig, options)), ("m", LogisticRegression())])
        with pytest.raises(OnnxConversionError, match=reason):
            convert_to_onnx(pipe.fit(frame, y), sig)
    three = y.where(frame["b"] < 1, "maybe")
    sig3 = Signature(inputs=sig.inputs, classes=("maybe", "no", "yes"))
    options = FeaturesSpec(target_encode=["city"])
    pipe = Pipeline([("f", build_features(sig3, options)), ("m", LogisticRegression())])
    with pytest.raises(OnnxConversionError, match="multiclass target"):
        convert_to_onnx(pipe.fit(frame, three), sig3)

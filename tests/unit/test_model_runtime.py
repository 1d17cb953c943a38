"""The model layer: ONNX conversion of real pipelines and the two runtimes that run them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins

from shipyard.data import Signature, build_signature, coerce_frame, to_text
from shipyard.errors import PredictionError, StoreError
from shipyard.model import (
    PIPELINE_FILE,
    DecisionThreshold,
    ModelPackage,
    OnnxRuntime,
    Predictions,
    Runtime,
    RuntimeChoice,
    SklearnRuntime,
    compare_predictions,
    serialise_pipeline,
)
from shipyard.spec import parse_spec
from shipyard.train import (
    ThresholdChoice,
    default_catalogue,
    make_pipeline,
    refit,
    strip_samplers,
)
from shipyard.train._onnx import OnnxConversionError, convert_to_onnx

SPEC = "name: penguins\ndata: {source: {type: csv, path: x}, target: %s}\n"


def _data(target: str) -> tuple[pd.DataFrame, pd.Series, Signature, str]:
    frame = load_penguins().dropna(subset=[target]).drop(columns=["year"])
    frame = frame.reset_index(drop=True)
    task = "regression" if target == "body_mass_g" else "multiclass"
    if target == "sex":
        task = "binary"
    signature = build_signature(frame, parse_spec(SPEC % target), task)
    x = coerce_frame(frame, signature)
    y = frame[target] if task == "regression" else pd.Series(to_text(frame[target]), dtype=object)
    return x, y, signature, task


def _fit(key: str, target: str = "species") -> tuple[Any, pd.DataFrame, Signature, str]:
    x, y, signature, task = _data(target)
    estimator = default_catalogue().create(key, task, seed=0, params={})
    return refit(make_pipeline(signature, estimator), x, y), x, signature, task


def _runtimes(key: str, target: str = "species") -> tuple[SklearnRuntime, OnnxRuntime, Any]:
    pipeline, x, signature, task = _fit(key, target)
    classes = None if task == "regression" else [str(c) for c in pipeline.classes_]
    onnx = OnnxRuntime(convert_to_onnx(pipeline, signature), signature, task, classes)
    return SklearnRuntime(pipeline, signature, task), onnx, x


def _with_gaps(x: pd.DataFrame) -> pd.DataFrame:
    """Missing numbers and categories in rows training had complete."""
    out = x.copy()
    out.loc[out.index[::7], "bill_length_mm"] = np.nan
    out.loc[out.index[::5], "island"] = np.nan
    return out


def _records(x: pd.DataFrame) -> list[dict[str, Any]]:
    return x.astype(object).where(x.notna(), None).to_dict("records")


@pytest.mark.parametrize(
    ("key", "target"),
    [
        ("lightgbm", "species"),
        ("linear", "species"),
        ("extra_trees", "species"),
        ("linear", "sex"),
        ("lightgbm", "body_mass_g"),
        ("linear", "body_mass_g"),
    ],
)
def test_onnx_reproduces_the_pipeline(key: str, target: str) -> None:
    sk, onnx, x = _runtimes(key, target)
    x = _with_gaps(x)
    reference = sk.predict_frame(x)
    # LightGBM's early-stopping trees on the penguins' species split next to a scaled imputed
    # median: float32 moves a gap row across one threshold (1e-3 in a probability). A run
    # checks every graph at 1e-4 and serves the sklearn pipeline when it does not hold.
    tolerance = 2e-3 if (key, target) == ("lightgbm", "species") else 1e-4
    check = compare_predictions(reference, onnx.predict_frame(x), tolerance=tolerance)
    assert check.ok, check.reason
    assert check.labels_equal and check.max_abs_diff <= tolerance
    # arrays built straight from records give what the frame path gives
    from_records = onnx.predict_records(_records(x))
    assert compare_predictions(reference, from_records, tolerance=tolerance).ok


@pytest.mark.parametrize("key", ["linear", "lightgbm"])
def test_a_row_gets_the_same_bits_alone_and_in_any_batch(key: str) -> None:
    sk, onnx, x = _runtimes(key)
    records = _records(_with_gaps(x))[:60]
    for runtime in (sk, onnx):
        whole = runtime.predict_records(records).probabilities
        alone = np.vstack([runtime.predict_records([r]).probabilities for r in records])
        odd = np.vstack(
            [runtime.predict_records(records[i : i + 7]).probabilities for i in range(0, 60, 7)]
        )
        assert np.array_equal(whole, alone), runtime.name
        assert np.array_equal(whole, odd), runtime.name


def test_a_failed_check_says_what_differs() -> None:
    ref = Predictions.from_probabilities(np.array([[0.9, 0.1], [0.4, 0.6]]), ("a", "b"))
    off = Predictions.from_probabilities(np.array([[0.9, 0.1], [0.6, 0.4]]), ("a", "b"))
    check = compare_predictions(ref, off)
    assert not check.ok and not check.labels_equal
    assert "1 of 2 labels differ" in check.reason and "up to 0.2" in check.reason
    values = compare_predictions(
        Predictions(labels=np.array([100.0])), Predictions(labels=np.array([101.0]))
    )
    assert not values.ok and "relative" in values.reason


def test_datetime_inputs_do_not_convert_and_say_which_column() -> None:
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01", periods=40, freq="D"),
            "x": np.arange(40.0),
            "y": np.arange(40.0) * 2,
        }
    )
    spec = parse_spec("name: t\ndata: {source: {type: csv, path: x}, target: y}\n")
    signature = build_signature(frame, spec, "regression")
    estimator = default_catalogue().create("linear", "regression", seed=0, params={})
    pipeline = refit(make_pipeline(signature, estimator), coerce_frame(frame, signature), frame.y)
    with pytest.raises(OnnxConversionError, match=r"when \(datetime\)"):
        convert_to_onnx(pipeline, signature)


def test_an_estimator_without_a_converter_gives_a_short_reason() -> None:
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    pipeline, x, signature, _ = _fit("linear")
    features = pipeline.steps[0][1]
    odd = Pipeline(
        [
            ("features", features),
            ("model", DummyClassifier().fit(features.transform(x), pipeline.predict(x))),
        ]
    )
    with pytest.raises(OnnxConversionError, match="DummyClassifier") as info:
        convert_to_onnx(odd, signature)
    assert len(str(info.value)) < 400


def test_onnx_runtime_refuses_a_graph_for_other_inputs() -> None:
    pipeline, _, signature, task = _fit("linear")
    graph = convert_to_onnx(pipeline, signature)
    other = Signature(inputs=signature.inputs[:2], classes=signature.classes)
    with pytest.raises(PredictionError, match=r"inputs \(6: .*differ from the Signature's \(2"):
        OnnxRuntime(graph, other, task, [str(c) for c in pipeline.classes_])
    with pytest.raises(PredictionError, match="cannot load"):
        OnnxRuntime(b"not onnx", signature, task, ["a"])


# --- decision thresholds ------------------------------------------------------------------


def _binary_model() -> tuple[Any, pd.DataFrame, Signature, bytes]:
    """A penguin-sex model trained with SMOTE, stripped and converted as a run packages it."""
    x, y, signature, task = _data("sex")
    estimator = default_catalogue().create("linear", task, seed=0, params={})
    fitted = refit(make_pipeline(signature, estimator, resample="smote", seed=0), x, y)
    pipeline = strip_samplers(fitted)
    return pipeline, x, signature, convert_to_onnx(pipeline, signature)


def _gap_threshold(proba: np.ndarray, quantile: float) -> float:
    """A threshold near ``quantile`` of ``proba`` with no row within 1e-3 of it (so float32
    and float64 probabilities fall on the same side)."""
    ranked = np.sort(proba)
    start = int(quantile * len(ranked))
    i = next(i for i in range(start, len(ranked) - 1) if ranked[i + 1] - ranked[i] > 2e-3)
    return float((ranked[i] + ranked[i + 1]) / 2)


def test_both_runtimes_label_by_the_decision_threshold_alike() -> None:
    pipeline, x, signature, graph = _binary_model()
    x = _with_gaps(x)
    classes = [str(c) for c in pipeline.classes_]
    positive, negative = classes[1], classes[0]
    proba = pipeline.predict_proba(x)[:, 1]
    rule = DecisionThreshold(_gap_threshold(proba, 0.25), positive, "f2")
    expected = np.where(proba >= rule.threshold, positive, negative)
    plain = SklearnRuntime(pipeline, signature, "binary").predict_frame(x)
    assert plain.probabilities is not None
    runtimes: list[Runtime] = [
        SklearnRuntime(pipeline, signature, "binary", threshold=rule),
        OnnxRuntime(graph, signature, "binary", classes, threshold=rule),
    ]
    for runtime in runtimes:
        for predictions in (runtime.predict_frame(x), runtime.predict_records(_records(x))):
            assert list(predictions.labels) == list(expected), runtime.name
            assert predictions.classes == tuple(classes)
            assert predictions.probabilities is not None
            np.testing.assert_allclose(predictions.probabilities, plain.probabilities, atol=1e-4)
        alone = runtime.predict_records(_records(x)[:1])
        assert list(alone.labels) == list(expected[:1])
    assert (expected != plain.labels).sum() > 10  # the threshold changed labels
    check = compare_predictions(runtimes[0].predict_frame(x), runtimes[1].predict_frame(x))
    assert check.ok, check.reason


def test_a_package_keeps_its_decision_threshold_and_its_runtimes_apply_it() -> None:
    pipeline, x, signature, graph = _binary_model()
    classes = [str(c) for c in pipeline.classes_]
    proba = pipeline.predict_proba(x)[:, 1]
    tuned = ThresholdChoice(_gap_threshold(proba, 0.3), 0.8, 0.7, "f2", classes[1])
    package = ModelPackage(
        pipeline, signature, "binary", {"decision_threshold": tuned.to_dict()}, onnx=graph
    )
    loaded = ModelPackage.from_files(package.to_files())
    assert loaded.decision_threshold == DecisionThreshold(tuned.threshold, classes[1], "f2")
    assert loaded.metadata["decision_threshold"]["default_score"] == 0.7
    expected = list(np.where(proba >= tuned.threshold, classes[1], classes[0]))
    assert list(loaded.predict(x).labels) == expected
    prefers: tuple[RuntimeChoice, ...] = ("sklearn", "onnx")
    for prefer in prefers:
        runtime = loaded.runtime(prefer)
        assert runtime.name == prefer
        assert list(runtime.predict_frame(x).labels) == expected
    before = ModelPackage(pipeline, signature, "binary", onnx=graph)  # made before thresholds
    old = ModelPackage.from_files(before.to_files())
    assert old.decision_threshold is None
    assert (
        list(old.runtime("onnx").predict_frame(x).labels)
        == list(old.predict(x).labels)
        == list(np.asarray(classes, dtype=object)[pipeline.predict_proba(x).argmax(axis=1)])
    )


def test_a_threshold_that_does_not_fit_the_model_is_refused() -> None:
    pipeline, _, signature, _ = _fit("linear")  # species: multiclass
    rule = DecisionThreshold(0.3, "Adelie")
    with pytest.raises(PredictionError, match="applies to a binary model"):
        SklearnRuntime(pipeline, signature, "multiclass", threshold=rule)
    graph = convert_to_onnx(pipeline, signature)
    classes = [str(c) for c in pipeline.classes_]
    with pytest.raises(PredictionError, match="applies to a binary model"):
        OnnxRuntime(graph, signature, "multiclass", classes, threshold=rule)
    binary, _, sex_signature, _ = _binary_model()
    wrong = {"decision_threshold": {"threshold": 0.4, "positive": "unknown"}}
    package = ModelPackage(binary, sex_signature, "binary", wrong)
    with pytest.raises(StoreError, match=r"'decision_threshold' is invalid.*'unknown'"):
        package.runtime("sklearn")
    broken = ModelPackage(binary, sex_signature, "binary", {"decision_threshold": {"t": 1}})
    with pytest.raises(StoreError, match="needs a numeric 'threshold'"):
        broken.predict(pd.DataFrame())


def test_a_pipeline_serialised_ahead_is_stored_as_is_and_loads_as_the_pipeline() -> None:
    pipeline, x, signature, graph = _binary_model()
    ahead = serialise_pipeline(pipeline)
    package = ModelPackage(pipeline, signature, "binary", onnx=graph, pipeline_file=ahead)
    files = package.to_files()
    assert files[PIPELINE_FILE] is ahead
    made_here = ModelPackage(pipeline, signature, "binary", onnx=graph).to_files()
    for loaded in (ModelPackage.from_files(files), ModelPackage.from_files(made_here)):
        assert list(loaded.predict(x).labels) == list(pipeline.predict(x))
        assert loaded.pipeline_file is None  # a loaded package serialises its own on demand

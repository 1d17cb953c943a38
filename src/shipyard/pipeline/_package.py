"""The run's packaging step: refit the winner, convert it to ONNX (kept only when it
reproduces the pipeline), build the model package and register it, then the gate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard import data as sd
from shipyard.errors import StoreError
from shipyard.evaluate import Evaluation
from shipyard.model import (
    DECISION_THRESHOLD_KEY,
    DecisionThreshold,
    OnnxRuntime,
    Predictions,
    ReferenceSample,
    SklearnRuntime,
    compare_predictions,
    serialise_pipeline,
)
from shipyard.pipeline._context import Prepared, RunContext, build_pipeline
from shipyard.pipeline._result import CandidateResult, RunResult
from shipyard.registry import ModelPackage, Registry
from shipyard.spec import ProjectSpec
from shipyard.store import Store
from shipyard.tracking import Run
from shipyard.train import predict_evaluate, refit, strip_samplers
from shipyard.train._onnx import OnnxConversionError, convert_to_onnx

__all__ = [
    "ONNX_TOLERANCE",
    "PackageParts",
    "convert_and_check",
    "onnx_check_rows",
    "package_parts",
    "refit_best",
    "refit_on_all",
    "register",
    "sklearn_reference",
]

ONNX_CHECK_ROWS = 1_000
"""The most holdout rows the ONNX graph is checked on (a seeded sample of a larger holdout):
enough to reach every tree's branches many times over, few enough that the check costs a
fraction of the conversion."""

ONNX_TOLERANCE = 1e-4
"""The largest difference a served ONNX graph may show against the pipeline on the holdout."""


def refit_best(
    ctx: RunContext, best: CandidateResult, threshold: DecisionThreshold | None = None
) -> tuple[Any, Evaluation]:
    """The winner fitted on the training part (without its samplers, which act in fit only)
    and its evaluation on the holdout, labelled by ``threshold`` when there is one."""
    prepared = ctx.prepared
    train_idx, test_idx = prepared.train_idx, prepared.test_idx
    model = strip_samplers(
        refit(_unfitted(ctx, best), prepared.x.iloc[train_idx], prepared.y.iloc[train_idx])
    )
    holdout = predict_evaluate(
        model,
        prepared.x.iloc[test_idx],
        prepared.y.iloc[test_idx],
        task=prepared.task,
        classes=prepared.signature.classes,
        threshold=None if threshold is None else threshold.threshold,
    )
    return model, holdout


def _unfitted(ctx: RunContext, best: CandidateResult) -> Any:
    estimator = ctx.prepared.estimators[best.label]
    if best.model == "ensemble":  # already a whole pipeline of pipelines
        return estimator
    return build_pipeline(ctx.spec, ctx.prepared, estimator, warn=ctx.warn)


def refit_on_all(ctx: RunContext, best: CandidateResult, scored: Any) -> Any:
    """The winner refit on the training part and the holdout together (``split.refit: all``);
    its boosters fit as many rounds as in ``scored``, the model the holdout scored (their
    early stopping found them there)."""
    prepared = ctx.prepared
    rows = np.concatenate([prepared.train_idx, prepared.test_idx])
    model = refit(
        _unfitted(ctx, best), prepared.x.iloc[rows], prepared.y.iloc[rows], rounds_of=scored
    )
    return strip_samplers(model)


def onnx_check_rows(prepared: Prepared) -> pd.DataFrame:
    """The rows an ONNX graph is checked on: up to ``ONNX_CHECK_ROWS`` holdout rows (a seeded
    sample of a larger holdout) plus one with every input missing."""
    test_idx = prepared.test_idx
    if len(test_idx) > ONNX_CHECK_ROWS:
        rng = np.random.default_rng(0)
        test_idx = np.sort(rng.choice(test_idx, ONNX_CHECK_ROWS, replace=False))
    holdout = prepared.x.iloc[test_idx]
    blank = pd.DataFrame([dict.fromkeys(prepared.signature.input_names)])
    return pd.concat([holdout, sd.coerce_frame(blank, prepared.signature)], ignore_index=True)


def convert_and_check(
    model: Any,
    signature: sd.Signature,
    task: str,
    rows: pd.DataFrame,
    threshold: DecisionThreshold | None = None,
    reference: Callable[[], Predictions] | None = None,
) -> tuple[bytes | None, dict[str, Any]]:
    """Convert a fitted pipeline to ONNX and keep the graph only if it reproduces it.

    The check runs both runtimes on ``rows`` (as a frame, as batch prediction does, and as
    records, as the server does): labels must be equal and probabilities (or regression
    values) within ``ONNX_TOLERANCE``. The pipeline's own predictions come from
    ``reference`` when given (called once the graph's are made: the conversion helper
    receives them from the run, which computes them meanwhile), else from
    :func:`sklearn_reference`.

    Returns:
        ``(graph, info)``: the graph or ``None``, and what happened (for the package's
        metadata): ``status`` (``converted``, ``not converted`` or ``rejected``), ``reason``,
        ``check`` and the conversion's ``seconds``.
    """
    started = time.perf_counter()
    try:
        graph = convert_to_onnx(model, signature)
    except OnnxConversionError as exc:
        return None, {"status": "not converted", "reason": f"not converted: {exc}"}
    seconds = round(time.perf_counter() - started, 3)
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()}
        for r in rows.astype(object).where(rows.notna(), None).to_dict("records")
    ]
    classes = None if task == "regression" else [str(c) for c in model.classes_]
    onnx = OnnxRuntime(graph, signature, task, classes, threshold=threshold)
    as_frame, as_records = onnx.predict_frame(rows), onnx.predict_records(records)
    if reference is None:
        expected = sklearn_reference(model, signature, task, rows, threshold)
    else:
        expected = reference()
    checks = [
        compare_predictions(expected, as_frame, tolerance=ONNX_TOLERANCE),
        compare_predictions(expected, as_records, tolerance=ONNX_TOLERANCE),
    ]
    worst = max(checks, key=lambda c: (not c.ok, c.max_abs_diff))
    info: dict[str, Any] = {"check": worst.to_dict(), "seconds": seconds, "bytes": len(graph)}
    if not worst.ok:
        reason = f"rejected: the ONNX graph does not reproduce the pipeline ({worst.reason})"
        return None, {**info, "status": "rejected", "reason": reason}
    return graph, {**info, "status": "converted", "reason": ""}


def sklearn_reference(
    model: Any,
    signature: sd.Signature,
    task: str,
    rows: pd.DataFrame,
    threshold: DecisionThreshold | None = None,
) -> Predictions:
    """The pipeline's own predictions for ``rows``, which its ONNX graph must reproduce."""
    return SklearnRuntime(model, signature, task, threshold=threshold).predict_frame(rows)


@dataclass(frozen=True)
class PackageParts:
    """What the model package holds besides its ONNX graph and metadata: the serialised
    pipeline and the drift baselines (made while the graph converts, off the run's path)."""

    pipeline_file: bytes
    profile: sd.ReferenceProfile
    reference: ReferenceSample


def package_parts(
    spec: ProjectSpec, prepared: Prepared, holdout: Evaluation, model: Any
) -> PackageParts:
    """The package's parts for ``model`` (see :class:`PackageParts`)."""
    return PackageParts(
        serialise_pipeline(model),
        _reference_profile(prepared, holdout),
        _reference_sample(spec, prepared, holdout, model),
    )


def register(
    spec: ProjectSpec,
    store: Store,
    run: Run,
    prepared: Prepared,
    candidates: list[CandidateResult],
    model: Any,
    holdout: Evaluation,
    lineage: dict[str, Any],
    user: str,
    onnx: bytes | None,
    onnx_info: dict[str, Any],
    pii: sd.PiiPolicy,
    threshold: DecisionThreshold | None = None,
    parts: PackageParts | None = None,
) -> RunResult:
    """Register ``model`` as a new version and put it through the gate; ``parts`` when the
    run made them already (else made here)."""
    registry = Registry(store)
    name = spec.model_name
    best = candidates[0]
    metadata = {
        "metrics": holdout.metrics,
        "primary_metric": prepared.metric,
        "candidate": best.label,
        "model": best.model,
        "cv": {"mean": best.cv_mean, "std": best.cv_std},
        "lineage": {
            **lineage,
            "run_id": run.id,
            "n_rows": len(prepared.frame),
            "primary_metric": prepared.metric,
            **({"pii": dict(pii.actions)} if pii else {}),
        },
        "created_at": time.time(),
        "project": spec.name,
        "onnx": onnx_info,
    }
    if threshold is not None:  # the runtimes label by it, in batch and in the server
        metadata[DECISION_THRESHOLD_KEY] = threshold.to_dict()
    if pii:  # the server drops or hashes these fields before anything is logged
        metadata["pii"] = dict(pii.actions)
        metadata["pii_key_id"] = pii.key.key_id if pii.key is not None else None
    if parts is None:
        parts = package_parts(spec, prepared, holdout, model)
    package = ModelPackage(
        model,
        prepared.signature,
        prepared.task,
        metadata,
        parts.profile,
        onnx=onnx,
        reference=parts.reference,
        pipeline_file=parts.pipeline_file,
    )
    record = registry.register(name, package, run_id=run.id, created_by=user)
    try:
        promoted, gate = _gate(spec, registry, name, prepared, holdout, record.version, user)
    except StoreError as exc:  # the version is whole; say so, and how to finish the job
        alias = spec.registry.alias
        msg = (
            f"registered {name} version {record.version}, but the champion/challenger gate "
            f"for {alias!r} did not complete: {exc}. The version is whole; once the store is "
            f"back, promote it (shipyard models promote {name} {record.version} --alias "
            f"{alias}) if it should hold the alias, or run again"
        )
        raise StoreError(msg) from exc
    run.set_tags({"model_version": f"{name}/{record.version}", "gate": gate})
    return RunResult(
        run_id=run.id,
        task=prepared.task,
        metric=prepared.metric,
        candidates=candidates,
        best=best.label,
        holdout=holdout.metrics,
        model_name=name,
        model_version=record.version,
        alias=spec.registry.alias,
        promoted=promoted,
        gate=gate,
        dataset_fingerprint=prepared.fingerprint,
        n_rows=len(prepared.frame),
        warnings=prepared.warnings,
        runtime="onnx" if onnx is not None else "sklearn",
        onnx=onnx_info,
        confusion_matrix=(
            {"labels": holdout.labels, "matrix": holdout.confusion_matrix}
            if holdout.confusion_matrix is not None
            else None
        ),
    )


def _reference_profile(prepared: Prepared, holdout: Evaluation) -> sd.ReferenceProfile:
    """The drift baseline: training inputs, and the model's own holdout predictions."""
    inputs = sd.profile_frame(prepared.x.iloc[prepared.train_idx], prepared.signature)
    predictions: dict[str, sd.ColumnProfile] = {}
    if holdout.y_pred is not None:
        is_classifier = prepared.task != "regression"
        predictions["prediction"] = sd.profile_values(holdout.y_pred, categorical=is_classifier)
    if holdout.proba is not None:
        predictions["confidence"] = sd.profile_values(holdout.proba.max(axis=1), categorical=False)
    return sd.ReferenceProfile(inputs=inputs, predictions=predictions)


def _reference_sample(
    spec: ProjectSpec, prepared: Prepared, holdout: Evaluation, model: Any
) -> ReferenceSample:
    """The exact-test baseline: a seeded sample of training inputs and holdout predictions,
    named as the prediction log names them."""
    predictions = pd.DataFrame(index=range(len(prepared.test_idx)))
    if prepared.task == "regression":
        predictions["prediction"] = np.asarray(holdout.y_pred, dtype=np.float64)
        predictions["target"] = np.asarray(holdout.y_true, dtype=np.float64)
    else:
        predictions["prediction"] = [str(v) for v in np.asarray(holdout.y_pred)]
        if holdout.proba is not None:
            for i, cls in enumerate(model.classes_):
                predictions[f"proba.{cls}"] = holdout.proba[:, i]
        predictions["target"] = [str(v) for v in np.asarray(holdout.y_true)]
    inputs = prepared.x.iloc[prepared.train_idx]
    return ReferenceSample.build(
        inputs, predictions, max_rows=spec.monitoring.reference_rows, seed=spec.seed
    )


def _gate(
    spec: ProjectSpec,
    registry: Registry,
    name: str,
    prepared: Prepared,
    holdout: Evaluation,
    version: int,
    user: str,
) -> tuple[bool, str]:
    """The champion/challenger gate (:func:`decide_promotion`): does the new version take the
    alias? With ``registry.gate.bootstrap``, the champion scores the same holdout rows."""
    from shipyard.registry.gate import HoldoutPredictions, decide_promotion, package_scorer

    classes = prepared.signature.classes
    challenger = Predictions(
        labels=np.asarray(holdout.y_pred),
        probabilities=holdout.proba,
        classes=tuple(str(c) for c in classes) if classes and holdout.proba is not None else None,
    )
    x_holdout = prepared.x.iloc[prepared.test_idx]
    sensitive = None
    if spec.evaluation.sensitive:
        rows = prepared.frame.iloc[prepared.test_idx]
        sensitive = rows[spec.evaluation.sensitive].reset_index(drop=True)
    decision = decide_promotion(
        registry,
        name,
        version,
        alias=spec.registry.alias,
        metric=prepared.metric,
        metrics=holdout.metrics,
        policy=spec.registry.gate,
        min_improvement=spec.registry.min_improvement,
        holdout=HoldoutPredictions(
            prepared.task, np.asarray(holdout.y_true), challenger, sensitive
        ),
        score_champion=package_scorer(registry, x_holdout),
        user=user,
        seed=spec.split.seed,
    )
    if spec.registry.alias is None:
        return False, "no alias configured"
    return decision.promoted, decision.reason

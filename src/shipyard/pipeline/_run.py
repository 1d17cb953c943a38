"""``shipyard run``: ingest, validate, split, train candidates, evaluate, register, gate."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard import data as sd
from shipyard.errors import StoreError
from shipyard.evaluate import (
    CandidateRow,
    Evaluation,
    RunReport,
    greater_is_better,
    render_run_report,
)
from shipyard.model import OnnxRuntime, ReferenceSample, SklearnRuntime, compare_predictions
from shipyard.pipeline._events import Event, EventHandler, ignore_events
from shipyard.pipeline._inspect import Inspection, Plan, inspect_data, pii_policy, preflight
from shipyard.pipeline._result import CandidateResult, RunResult
from shipyard.registry import ModelPackage, Registry
from shipyard.spec import ProjectSpec, spec_hash
from shipyard.store import Store, dialect_insert, redact_url, tables
from shipyard.tracking import Run, Tracker, collect_lineage
from shipyard.train import (
    Catalogue,
    SearchBudget,
    StopTrial,
    Trial,
    budgeted_search,
    cross_validate,
    default_catalogue,
    ensemble_pipeline,
    make_pipeline,
    predict_evaluate,
    refit,
    search_families,
    select_ensemble,
)
from shipyard.train._onnx import OnnxConversionError, convert_to_onnx

__all__ = ["run_project"]

logger = logging.getLogger(__name__)

ONNX_TOLERANCE = 1e-4
"""The largest difference a served ONNX graph may show against the pipeline on the holdout."""


@dataclass
class _Prepared:
    frame: pd.DataFrame
    x: pd.DataFrame
    y: pd.Series
    task: str
    metric: str
    signature: sd.Signature
    fingerprint: str
    warnings: list[str]
    train_idx: np.ndarray
    test_idx: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    estimators: dict[str, Any]


def run_project(
    spec: ProjectSpec,
    *,
    store: Store,
    user: str = "shipyard",
    catalogue: Catalogue | None = None,
    on_event: EventHandler = ignore_events,
    tags: Mapping[str, str] | None = None,
) -> RunResult:
    """Run a project end to end and register the winning model.

    Args:
        spec: the validated project file.
        store: where runs, artifacts and model versions are recorded.
        user: who is running it (recorded on alias moves).
        catalogue: model families; the built-in catalogue by default.
        on_event: receives progress events.
        tags: tags for the run (a retraining records what triggered it).

    Everything :func:`preflight` can check (the same checks as ``shipyard validate``) is
    checked before the first candidate is trained.

    Raises:
        DataError: the source cannot be read or lacks a declared column, or the target or
            the split does not fit the data; nothing was trained.
        DataValidationError: an error-level check failed; nothing was trained.
        TrainingError: a candidate names an unknown model or parameter (nothing was trained),
            or failed to train.
    """
    started = time.monotonic()  # a search's budget is the whole run's
    on_event(Event("step", f"loading {spec.data.source.type} data"))
    frame = sd.load_source(spec.data.source, spec.base_dir)
    on_event(Event("step", f"validating {len(frame):,} rows x {frame.shape[1]} columns"))
    inspection = inspect_data(spec, frame)
    lineage = collect_lineage(
        spec_hash=spec_hash(spec), dataset_fingerprint=inspection.fingerprint, cwd=spec.base_dir
    )
    with (
        Tracker(store) as tracker,  # closing it stops its writer thread
        tracker.start_run("run", project=spec.name, lineage=lineage) as run,
    ):
        if tags:
            run.set_tags(dict(tags))
        pii = _record_pii_index(spec, frame, run)
        prepared = _prepare(spec, inspection, run, catalogue, on_event)
        _record_dataset(store, spec, prepared)
        search = None
        if spec.search is not None:
            candidates, search = _search_all(
                spec, prepared, tracker, run, on_event, catalogue, started
            )
        else:
            candidates = _cross_validate_all(spec, prepared, tracker, run, on_event)
        best = candidates[0]
        run.set_tags({"best_candidate": best.label, "task": prepared.task})
        on_event(Event("step", f"refitting {best.label} and evaluating on the holdout"))
        model, holdout = _refit_best(prepared, best)
        run.log_metrics(holdout.metrics)
        run.log_artifact("evaluation.json", json.dumps(holdout.to_dict(), indent=2).encode())
        on_event(Event("step", f"converting {best.label} to ONNX and checking it on the holdout"))
        onnx, onnx_info = _export_onnx(prepared, model)
        run.set_tags({"runtime": "onnx" if onnx is not None else "sklearn"})
        on_event(Event("step", "registering the model"))
        result = _register(
            spec,
            store,
            run,
            prepared,
            candidates,
            model,
            holdout,
            dataclasses.asdict(lineage),
            user,
            onnx,
            onnx_info,
            pii,
        )
        on_event(Event("step", "writing the HTML report"))
        path = _write_report(spec, inspection, result, holdout, lineage.git_commit, run, on_event)
        return dataclasses.replace(result, report_path=path, search=search)


def _prepare(
    spec: ProjectSpec,
    inspection: Inspection,
    run: Run,
    catalogue: Catalogue | None,
    on_event: EventHandler,
) -> _Prepared:
    report, task, metric = inspection.report, inspection.task, inspection.metric
    run.log_artifact(
        "validation.json", json.dumps(report.to_dict(), indent=2, default=str).encode()
    )
    run.log_metrics(
        {"validation.errors": len(report.errors), "validation.warnings": len(report.warnings)}
    )
    warnings = [r.to_sentence() for r in report.warnings]
    for message in warnings:
        on_event(Event("warning", message))
    on_event(Event("step", "checking the candidates and the split"))
    plan: Plan = preflight(spec, inspection, catalogue=catalogue)
    signature = plan.signature
    run.log_params(_run_params(spec, task, metric, signature, len(plan.frame)))
    run.log_artifact("signature.json", signature.to_json().encode())
    return _Prepared(
        frame=plan.frame,
        x=plan.x,
        y=plan.y,
        task=task,
        metric=metric,
        signature=signature,
        fingerprint=inspection.fingerprint,
        warnings=warnings,
        train_idx=plan.train_idx,
        test_idx=plan.test_idx,
        folds=plan.folds,
        estimators=plan.estimators,
    )


def _run_params(
    spec: ProjectSpec, task: str, metric: str, signature: sd.Signature, n_rows: int
) -> dict[str, Any]:
    return {
        "task": task,
        "metric": metric,
        "target": spec.data.target,
        "n_rows": n_rows,
        "n_features": len(signature.inputs),
        "split.strategy": spec.split.strategy
        or ("random" if task == "regression" else "stratified"),
        "split.test_size": spec.split.test_size,
        "split.cv_folds": spec.split.cv_folds,
        "seed": spec.seed,
        "candidates": ",".join(c.label for c in spec.models),
    }


def _cross_validate_all(
    spec: ProjectSpec,
    prepared: _Prepared,
    tracker: Tracker,
    parent: Run,
    on_event: EventHandler,
) -> list[CandidateResult]:
    pool: dict[str, np.ndarray] = {}
    results = [
        _cross_validate_one(spec, i, prepared, tracker, parent, on_event, pool)
        for i in range(len(spec.models))
    ]
    ranked = _ranked(results, prepared.metric)
    members = {
        c.label: make_pipeline(prepared.signature, prepared.estimators[c.label]) for c in ranked
    }
    return _with_ensemble(spec, prepared, tracker, parent, on_event, ranked, pool, members)


def _ranked(results: list[CandidateResult], metric: str) -> list[CandidateResult]:
    """Best first by CV mean; ties keep their order (the project file's)."""
    sign = 1.0 if greater_is_better(metric) else -1.0
    return sorted(results, key=lambda r: -sign * _finite(r.cv_mean[metric]))


_ENSEMBLE_POOL = 8  # the best candidates whose out-of-fold predictions an ensemble draws on


def _with_ensemble(
    spec: ProjectSpec,
    prepared: _Prepared,
    tracker: Tracker,
    parent: Run,
    on_event: EventHandler,
    ranked: list[CandidateResult],
    pool: Mapping[str, np.ndarray],
    members: Mapping[str, Any],
    deadline: float | None = None,
) -> list[CandidateResult]:
    """Add a weighted ensemble of the best candidates (see :func:`select_ensemble`) to the
    ranking, as one more candidate with its own nested CV score and child run; it wins only
    when that score is better. ``pool`` holds candidates' out-of-fold predictions, ``members``
    their unfitted pipelines. Under a time budget (``deadline``, ``time.monotonic()``), an
    ensemble whose refit (every member's) would end past it is left out, and the run says so."""
    chosen = [c for c in ranked if c.label in pool][:_ENSEMBLE_POOL]
    if len(chosen) < 2:
        return ranked
    if deadline is not None and time.monotonic() >= deadline:
        on_event(Event("warning", "no ensemble: the budget is spent"))
        parent.set_tags({"ensemble": "skipped: the budget is spent"})
        return ranked
    metric = prepared.metric
    on_event(Event("step", f"weighing an ensemble of the best {len(chosen)} candidates"))
    choice = select_ensemble(
        {c.label: pool[c.label] for c in chosen},
        prepared.y.iloc[prepared.train_idx].to_numpy(),
        [held for _, held in prepared.folds],
        task=prepared.task,
        metric=metric,
        classes=prepared.signature.classes,
    )
    if choice is None:
        return ranked
    fit_seconds = {c.label: c.fit_seconds for c in chosen}
    # each member refit on the whole training part: a fold's fit and then some
    refit = sum(1.5 * fit_seconds[k] / len(prepared.folds) for k in choice.weights)
    if deadline is not None and time.monotonic() + refit + 2.0 > deadline:
        why = f"its refit (about {refit:.0f} s) would end past the budget"
        on_event(Event("warning", f"no ensemble: {why}"))
        parent.set_tags({"ensemble": f"skipped: {why}"})
        return ranked
    taken = {c.label for c in ranked}
    label = next(n for n in ("ensemble", "ensemble*", "ensemble**") if n not in taken)
    with tracker.start_run(label, project=spec.name, parent_id=parent.id) as child:
        child.log_params(
            {"model": "ensemble"} | {f"weight.{k}": round(w, 4) for k, w in choice.weights.items()}
        )
        for fold, value in enumerate(choice.fold_scores):
            child.log_metrics({f"fold.{metric}": value}, step=fold)
        child.log_metrics({f"cv.{metric}": choice.mean, f"cv.{metric}.std": choice.std})
    ensemble = CandidateResult(
        label=label,
        model="ensemble",
        run_id=child.id,
        cv_mean={metric: choice.mean},
        cv_std={metric: choice.std},
        fit_seconds=sum(fit_seconds[k] for k in choice.weights),
        cv_folds=[{metric: value} for value in choice.fold_scores],
        params=dict(choice.weights),
    )
    prepared.estimators[label] = ensemble_pipeline(
        prepared.task, {k: members[k] for k in choice.weights}, choice.weights
    )
    return _ranked([*ranked, ensemble], metric)


def _cross_validate_one(
    spec: ProjectSpec,
    index: int,
    prepared: _Prepared,
    tracker: Tracker,
    parent: Run,
    on_event: EventHandler,
    pool: dict[str, np.ndarray],
) -> CandidateResult:
    cand = spec.models[index]
    estimator = prepared.estimators[cand.label]  # built and checked by preflight
    on_event(Event("candidate", f"cross-validating {cand.label}", index, len(spec.models)))
    with tracker.start_run(cand.label, project=spec.name, parent_id=parent.id) as child:
        child.log_params({"model": cand.model, **{f"param.{k}": v for k, v in cand.params.items()}})

        def on_fold(fold: int, scores: dict[str, float]) -> None:
            message = f"{cand.label}: fold {fold + 1}"
            on_event(Event("fold", message, fold + 1, spec.split.cv_folds))

        result = _cross_validate_in(child, prepared, estimator, cand.label, cand.model, on_fold)
    if result.predictions is not None:
        pool[cand.label] = result.predictions
    return result.candidate


@dataclass(frozen=True)
class _Validated:
    candidate: CandidateResult
    predictions: np.ndarray | None  # out of fold, for the ensemble


def _cross_validate_in(
    child: Run,
    prepared: _Prepared,
    estimator: Any,
    label: str,
    model: str,
    on_fold: Callable[[int, dict[str, float]], None],
    params: Mapping[str, Any] | None = None,
) -> _Validated:
    """Cross-validate ``estimator`` on the training part, recording each fold's metrics and
    the means in ``child`` (an exception from ``on_fold``, such as a stopped trial, ends it
    before the means are recorded)."""

    def record_fold(fold: int, scores: dict[str, float]) -> None:
        child.log_metrics({f"fold.{k}": v for k, v in scores.items()}, step=fold)
        on_fold(fold, scores)

    cv_result = cross_validate(
        make_pipeline(prepared.signature, estimator),
        prepared.x.iloc[prepared.train_idx],
        prepared.y.iloc[prepared.train_idx],
        cv=prepared.folds,
        task=prepared.task,
        classes=prepared.signature.classes,
        on_fold=record_fold,
        keep_predictions=True,
    )
    child.log_metrics({f"cv.{k}": v for k, v in cv_result.mean.items()})
    child.log_metrics({f"cv.{k}.std": v for k, v in cv_result.std.items()})
    child.log_metrics({"fit_seconds": cv_result.fit_seconds})
    candidate = CandidateResult(
        label=label,
        model=model,
        run_id=child.id,
        cv_mean=cv_result.mean,
        cv_std=cv_result.std,
        fit_seconds=cv_result.fit_seconds,
        cv_folds=cv_result.folds,
        params=dict(params or {}),
    )
    return _Validated(candidate, cv_result.predictions)


def _search_all(
    spec: ProjectSpec,
    prepared: _Prepared,
    tracker: Tracker,
    parent: Run,
    on_event: EventHandler,
    catalogue: Catalogue | None,
    started: float,
) -> tuple[list[CandidateResult], dict[str, Any]]:
    """Search the families under ``spec.search``'s budget; each trial is a child run.

    A time budget is the whole run's, from ``started`` (``time.monotonic()`` when the run
    began): the search ends early enough for the refit of its best trial and the run's last
    steps (ONNX conversion, report, registration), estimated by :func:`_post_search_seconds`.

    Returns the complete trials as candidates, best first (the best one's estimator is added
    to ``prepared.estimators`` for the refit), and a summary of the search.
    """
    search = spec.search
    assert search is not None
    catalogue = catalogue or default_catalogue()
    metric, task = prepared.metric, prepared.task
    families = search_families(spec, task, catalogue)
    results: dict[int, CandidateResult] = {}
    pool: dict[str, np.ndarray] = {}
    seconds = None
    if search.budget is not None:
        seconds = max(search.budget - (time.monotonic() - started), 0.0)
    budget = SearchBudget(seconds=seconds, trials=search.trials)
    n_folds = len(prepared.folds)
    limit = " and ".join(
        ([f"{search.budget:g} s"] if search.budget else [])
        + ([f"{search.trials} trials"] if search.trials else [])
    )
    on_event(Event("step", f"searching {len(families)} model families for {limit}"))

    def evaluate(trial: Trial, report: Callable[[int, float, float], None]) -> float:
        label = f"{trial.family}#{trial.number}"
        estimator = catalogue.create(
            trial.family, task, seed=spec.seed, params=trial.params, where="search"
        )
        on_event(Event("candidate", f"trial {trial.number}: {trial.family}", trial.number, 0))
        stopped: StopTrial | None = None
        with tracker.start_run(label, project=spec.name, parent_id=parent.id) as child:
            child.log_params(
                {"model": trial.family, "trial": trial.number}
                | {f"param.{k}": v for k, v in trial.params.items()}
            )
            last = [time.perf_counter()]

            def on_fold(fold: int, scores: dict[str, float]) -> None:
                now = time.perf_counter()
                seconds, last[0] = now - last[0], now
                report(fold, scores[metric], seconds)

            try:
                validated = _cross_validate_in(
                    child, prepared, estimator, label, trial.family, on_fold, trial.params
                )
            except StopTrial as stop:  # pruned or out of time: the run itself went fine
                child.set_tags({"trial_state": stop.reason})
                stopped = stop
            else:
                child.set_tags({"trial_state": "complete"})
        if stopped is not None:
            raise stopped
        results[trial.number] = validated.candidate
        if validated.predictions is not None:  # the best few stay, for the ensemble
            pool[label] = validated.predictions
            if len(pool) > _ENSEMBLE_POOL:
                ranked_now = _ranked(
                    [results[n] for n in results if results[n].label in pool], metric
                )
                del pool[ranked_now[-1].label]
        return validated.candidate.cv_mean[metric]

    starts: dict[str, list[dict[str, Any]]] = {}
    if "models" in spec.model_fields_set:  # the project file's candidates are tried first
        for cand in spec.models:
            starts.setdefault(cand.model, []).append(dict(cand.params))
    outcome = budgeted_search(
        families,
        evaluate,
        budget=budget,
        greater_is_better=greater_is_better(metric),
        seed=spec.seed,
        starts=starts,
        reserve=lambda best: _post_search_seconds(best.seconds, n_folds, search.budget or 0.0),
    )
    states = Counter(t.state for t in outcome.trials)
    parent.log_metrics(
        {"search.trials": len(outcome.trials), "search.seconds": outcome.seconds}
        | {f"search.{state}": n for state, n in states.items()}
    )
    parent.set_tags({"search.stopped_by": outcome.stopped_by})
    on_event(
        Event(
            "step",
            f"search done: {len(outcome.trials)} trials in {outcome.seconds:.1f} s "
            f"({', '.join(f'{n} {s}' for s, n in sorted(states.items()))}); best "
            f"{outcome.best.family}#{outcome.best.number} {metric} {outcome.best.score:.4g}",
        )
    )
    ranked = _ranked(list(results.values()), metric)
    members = {
        c.label: make_pipeline(
            prepared.signature,
            catalogue.create(c.model, task, seed=spec.seed, params=c.params, where="search"),
        )
        for c in ranked
        if c.label in pool
    }
    deadline = None if search.budget is None else started + search.budget
    ranked = _with_ensemble(
        spec, prepared, tracker, parent, on_event, ranked, pool, members, deadline
    )
    best = ranked[0]
    if best.label not in prepared.estimators:
        prepared.estimators[best.label] = catalogue.create(
            best.model, task, seed=spec.seed, params=best.params, where="search"
        )
    summary = {
        "trials": len(outcome.trials),
        "seconds": outcome.seconds,
        "stopped_by": outcome.stopped_by,
        "states": dict(states),
        "per_family": {k: len(v) for k, v in outcome.by_family().items()},
    }
    return ranked, summary


def _post_search_seconds(trial_seconds: float, n_folds: int, budget: float) -> float:
    """What a run needs after its search: the refit of the best (a fold's fit on
    ``n_folds / (n_folds - 1)`` times the rows, with room to spare) and the steps after it
    (ONNX conversion and its check, the report, registration: about 2-3 s on tables of
    10,000 rows on 2 cores, measured by ``benchmarks/training.py``); at most a third of the
    budget, so that a small budget still searches."""
    refit = 1.5 * trial_seconds / max(n_folds, 1)
    return min(refit + 2.0 + 0.02 * budget, budget / 3)


def _finite(value: float) -> float:
    return value if np.isfinite(value) else -np.inf


def _refit_best(prepared: _Prepared, best: CandidateResult) -> tuple[Any, Evaluation]:
    estimator = prepared.estimators[best.label]
    train_idx, test_idx = prepared.train_idx, prepared.test_idx
    model = refit(
        estimator if best.model == "ensemble" else make_pipeline(prepared.signature, estimator),
        prepared.x.iloc[train_idx],
        prepared.y.iloc[train_idx],
    )
    holdout = predict_evaluate(
        model,
        prepared.x.iloc[test_idx],
        prepared.y.iloc[test_idx],
        task=prepared.task,
        classes=prepared.signature.classes,
    )
    return model, holdout


def _export_onnx(prepared: _Prepared, model: Any) -> tuple[bytes | None, dict[str, Any]]:
    """Convert the refit pipeline to ONNX; keep the graph only if it reproduces the pipeline.

    The check runs both runtimes on the holdout (as a frame, as batch prediction does, and as
    records, as the server does) plus one record with every input missing: labels must be
    equal and probabilities (or regression values) within the tolerance.

    Returns:
        ``(graph, info)``: the graph or ``None``, and what happened (for the package's
        metadata): ``status`` (``converted``, ``not converted`` or ``rejected``), ``reason``,
        ``check`` and the conversion's ``seconds``.
    """
    started = time.perf_counter()
    try:
        graph = convert_to_onnx(model, prepared.signature)
    except OnnxConversionError as exc:
        return None, {"status": "not converted", "reason": f"not converted: {exc}"}
    seconds = round(time.perf_counter() - started, 3)
    holdout = prepared.x.iloc[prepared.test_idx]
    blank = pd.DataFrame([dict.fromkeys(prepared.signature.input_names)])
    rows = pd.concat([holdout, sd.coerce_frame(blank, prepared.signature)], ignore_index=True)
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()}
        for r in rows.astype(object).where(rows.notna(), None).to_dict("records")
    ]
    sklearn = SklearnRuntime(model, prepared.signature, prepared.task)
    classes = None if prepared.task == "regression" else [str(c) for c in model.classes_]
    onnx = OnnxRuntime(graph, prepared.signature, prepared.task, classes)
    reference = sklearn.predict_frame(rows)
    checks = [
        compare_predictions(reference, onnx.predict_frame(rows), tolerance=ONNX_TOLERANCE),
        compare_predictions(reference, onnx.predict_records(records), tolerance=ONNX_TOLERANCE),
    ]
    worst = max(checks, key=lambda c: (not c.ok, c.max_abs_diff))
    info: dict[str, Any] = {"check": worst.to_dict(), "seconds": seconds, "bytes": len(graph)}
    if not worst.ok:
        reason = f"rejected: the ONNX graph does not reproduce the pipeline ({worst.reason})"
        return None, {**info, "status": "rejected", "reason": reason}
    return graph, {**info, "status": "converted", "reason": ""}


def _register(
    spec: ProjectSpec,
    store: Store,
    run: Run,
    prepared: _Prepared,
    candidates: list[CandidateResult],
    model: Any,
    holdout: Evaluation,
    lineage: dict[str, Any],
    user: str,
    onnx: bytes | None,
    onnx_info: dict[str, Any],
    pii: sd.PiiPolicy,
) -> RunResult:
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
    if pii:  # the server drops or hashes these fields before anything is logged
        metadata["pii"] = dict(pii.actions)
        metadata["pii_key_id"] = pii.key.key_id if pii.key is not None else None
    package = ModelPackage(
        model,
        prepared.signature,
        prepared.task,
        metadata,
        _reference_profile(prepared, holdout),
        onnx=onnx,
        reference=_reference_sample(spec, prepared, holdout, model),
    )
    record = registry.register(name, package, run_id=run.id, created_by=user)
    try:
        promoted, gate = _gate(
            spec, registry, name, prepared.metric, holdout.metrics, record.version, user
        )
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


def _write_report(
    spec: ProjectSpec,
    inspection: Inspection,
    result: RunResult,
    holdout: Evaluation,
    git_commit: str | None,
    run: Run,
    on_event: EventHandler,
) -> str | None:
    """Store the HTML report; a failure here is reported but never fails the run.

    The model is registered (and maybe promoted) by now, so the run must not end as failed
    because a plot could not be drawn.
    """
    try:
        html = render_run_report(_report(spec, inspection, result, holdout, git_commit))
    except Exception as exc:  # any plotting or templating bug: report it and go on
        logger.warning("could not write the HTML report of run %s: %s", run.id, exc, exc_info=True)
        on_event(Event("warning", f"no HTML report: {type(exc).__name__}: {exc}"))
        return None
    try:
        run.log_artifact("report.html", html.encode())
    except StoreError as exc:  # a full disk or a lost store: the model is registered anyway
        logger.warning("could not store the HTML report of run %s: %s", run.id, exc)
        on_event(Event("warning", f"no HTML report: {exc}"))
        return None
    return f"runs/{run.id}/report.html"


def _report(
    spec: ProjectSpec,
    inspection: Inspection,
    result: RunResult,
    holdout: Evaluation,
    git_commit: str | None,
) -> RunReport:
    candidates = [
        CandidateRow(c.label, c.model, c.cv_folds, c.cv_mean, c.cv_std, c.fit_seconds)
        for c in result.candidates
    ]
    assert inspection.signature is not None  # the run got past validation
    facts = {
        "rows used": f"{result.n_rows:,} of {len(inspection.frame):,}",
        "data": f"{spec.data.source.type} source, fingerprint {result.dataset_fingerprint[:16]}",
        "split": f"{spec.split.strategy or 'default'} holdout of {spec.split.test_size:.0%}, "
        f"{spec.split.cv_folds}-fold CV",
        "git commit": git_commit or "-",
    }
    return RunReport(
        project=spec.name,
        run_id=result.run_id,
        task=result.task,
        metric=result.metric,
        candidates=candidates,
        holdout=holdout,
        validation=inspection.report.results,
        signature=inspection.signature,
        model_uri=result.model_uri,
        gate=result.gate,
        facts=facts,
        created_at=time.time(),
    )


def _reference_profile(prepared: _Prepared, holdout: Evaluation) -> sd.ReferenceProfile:
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
    spec: ProjectSpec, prepared: _Prepared, holdout: Evaluation, model: Any
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
    metric: str,
    metrics: dict[str, float],
    version: int,
    user: str,
) -> tuple[bool, str]:
    """The champion/challenger gate: does the new version take the alias?"""
    alias = spec.registry.alias
    if alias is None:
        return False, "no alias configured"
    champion = registry.champion(name, alias)
    new = metrics[metric]
    if champion is not None:
        old = champion.metrics.get(metric)
        if old is not None and np.isfinite(old):
            gain = (new - old) if greater_is_better(metric) else (old - new)
            needed = spec.registry.min_improvement
            if gain <= 0 or gain < needed:
                why = "a tie keeps the champion" if gain == 0 else "the challenger must beat it"
                if needed > 0:
                    why = f"needs an improvement of at least {needed}"
                return False, (
                    f"kept version {champion.version} as {alias}: {metric} {new:.4f} vs "
                    f"{old:.4f} ({why})"
                )
        was = f"{old:.4f}" if old is not None else "no value"
        reason = f"{metric} {new:.4f} vs {was} of champion version {champion.version}"
    else:
        reason = f"first version for {alias} ({metric} {new:.4f})"
    registry.promote(name, version, alias, moved_by=user, reason=reason)
    return True, f"promoted to {alias}: {reason}"


def _record_pii_index(spec: ProjectSpec, frame: pd.DataFrame, run: Run) -> sd.PiiPolicy:
    """Keep the keyed hashes of the PII columns' values with the run (``pii_index.parquet``),
    for erasure requests (``shipyard forget``), and return the project's PII policy."""
    pii = pii_policy(spec)
    index = pii.index(frame) if pii else None
    if index is not None:
        buffer = io.BytesIO()
        index.to_parquet(buffer, index=False)
        run.log_artifact(sd.PII_INDEX_ARTIFACT, buffer.getvalue())
    elif pii:
        run.set_tags({"pii_index": f"none: {sd.PII_KEY_ENV} was not set"})
    return pii


def _record_dataset(store: Store, spec: ProjectSpec, prepared: _Prepared) -> None:
    source = spec.data.source.model_dump()
    if "url" in source:  # never store a database password
        source["url"] = redact_url(source["url"])
    row = {
        "fingerprint": prepared.fingerprint,
        "source": json.dumps(source, default=str),
        "n_rows": int(prepared.frame.shape[0]),
        "n_columns": int(prepared.frame.shape[1]),
        "schema": prepared.signature.model_dump(mode="json"),
        "created_at": time.time(),
    }
    with store.begin() as conn:
        insert = dialect_insert(conn, tables.datasets).values(**row)
        conn.execute(insert.on_conflict_do_nothing(index_elements=["fingerprint"]))

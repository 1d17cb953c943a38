"""``shipyard run``: ingest, validate, split, train candidates, evaluate, register, gate.

The run is a sequence of steps over a :class:`RunContext` (the prepared data and the run's
handles): :func:`train_candidates` (``_candidates``), :func:`refit_best` and :func:`register`
(``_package``), the ONNX conversion (``_convert``) and :func:`write_report` (``_report``).
``shipyard worker`` (:func:`run_search_worker`) runs trials of a lead run's shared search.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from shipyard import data as sd
from shipyard.errors import TrainingError
from shipyard.evaluate import Evaluation, curve_points
from shipyard.model import DecisionThreshold
from shipyard.pipeline._candidates import Trained, search_trials, train_candidates
from shipyard.pipeline._context import Prepared, RunContext, warn_once
from shipyard.pipeline._convert import HELPER_MIN_BUDGET, OnnxConverter
from shipyard.pipeline._engine import ENGINES, EngineName, run_engine
from shipyard.pipeline._events import Event, EventHandler, ignore_events
from shipyard.pipeline._inspect import Inspection, Plan, inspect_data, pii_policy, preflight
from shipyard.pipeline._log import RunLog
from shipyard.pipeline._package import (
    onnx_check_rows,
    package_parts,
    refit_best,
    refit_on_all,
    register,
)
from shipyard.pipeline._report import (
    CardInputs,
    build_card,
    card_allowance,
    report_plots,
    write_report,
)
from shipyard.pipeline._result import RunResult
from shipyard.pipeline._shared import SharedSession
from shipyard.spec import ProjectSpec, spec_hash
from shipyard.store import Store
from shipyard.tracking import Run, Tracker, collect_lineage, record_dataset
from shipyard.train import Catalogue, SearchBudget, default_catalogue, tune_threshold

__all__ = ["CURVES_ARTIFACT", "WorkerResult", "run_project", "run_search_worker"]

logger = logging.getLogger(__name__)

CURVES_ARTIFACT = "curves.json"
"""The run's artifact holding its holdout ROC and PR curves as points (classifiers)."""


def run_project(
    spec: ProjectSpec,
    *,
    store: Store,
    user: str = "shipyard",
    catalogue: Catalogue | None = None,
    on_event: EventHandler = ignore_events,
    tags: Mapping[str, str] | None = None,
    study: str | None = None,
    engine: EngineName = "local",
    ray_address: str | None = None,
) -> RunResult:
    """Run a project end to end and register the winning model.

    Args:
        spec: the validated project file.
        store: where runs, artifacts and model versions are recorded.
        user: who is running it (recorded on alias moves).
        catalogue: model families; the built-in catalogue by default.
        on_event: receives progress events.
        tags: tags for the run (a retraining records what triggered it).
        study: share the search (``search:``) under this name with worker processes
            (``shipyard worker --study NAME``, same store): this run leads it.
        engine: where the candidates' cross-validation folds are fitted: ``local`` (this
            process, one after another) or ``ray`` (in parallel on Ray actors; needs
            ``shipyard[ray]``). With the same seed and a budget of trials, both give the same
            trials and scores. Refits, the ensemble and the rest of the run stay local.
        ray_address: the Ray cluster to use (``ray`` engine); without one, a local cluster
            is started with this machine's CPUs for the training step, and stopped after it.

    Everything :func:`preflight` can check (the same checks as ``shipyard validate``) is
    checked before the first candidate is trained. The run keeps its events as ``run.log``
    (failed runs too) and a classifier's holdout curves as ``curves.json``.

    Raises:
        DataError: the source cannot be read or lacks a declared column, or the target or
            the split does not fit the data; nothing was trained.
        DataValidationError: an error-level check failed; nothing was trained.
        TrainingError: a candidate names an unknown model or parameter (nothing was trained),
            or failed to train; or ``study`` without ``search:``, or a name already used; or
            an unknown engine.
        ShipyardError: the ``ray`` engine without Ray installed, or an unreachable cluster.
    """
    started = time.monotonic()  # a search's budget is the whole run's (Ray's start-up too)
    if study is not None and spec.search is None:
        msg = f"--study shares a search, and {spec.locate()} has no 'search:' section"
        raise TrainingError(msg)
    if engine not in ENGINES:
        msg = f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}"
        raise TrainingError(msg)
    with RunLog(on_event) as log:
        return _run(
            spec,
            store,
            user,
            catalogue or default_catalogue(),
            log,
            tags,
            study,
            started,
            (engine, ray_address),
        )


def _run(
    spec: ProjectSpec,
    store: Store,
    user: str,
    catalogue: Catalogue,
    log: RunLog,
    tags: Mapping[str, str] | None,
    study: str | None,
    started: float,
    engine: tuple[EngineName, str | None],
) -> RunResult:
    """:func:`run_project` itself, its events recorded by ``log`` on their way to the shell."""
    on_event = log.on_event
    frame, inspection = _load(spec, on_event)
    lineage = collect_lineage(
        spec_hash=spec_hash(spec), dataset_fingerprint=inspection.fingerprint, cwd=spec.base_dir
    )
    session = SharedSession(store, study, lead=True) if study is not None else None
    with (
        Tracker(store) as tracker,  # closing it stops its writer thread
        tracker.start_run("run", project=spec.name, lineage=lineage) as run,
        log.stored_with(run),  # before the run ends: a failed run keeps its log too
        # a run with a time budget converts its winner in a helper process started now
        OnnxConverter(helper=_convert_in_helper(spec)) as converter,
    ):
        if tags:
            run.set_tags(dict(tags))
        pii = _record_pii_index(spec, frame, run)
        prepared = _prepare(spec, inspection, catalogue, on_event)
        _log_prepared(spec, inspection, prepared, run)
        record_dataset(
            store,
            fingerprint=prepared.fingerprint,
            source=spec.data.source.model_dump(),
            n_rows=prepared.frame.shape[0],
            n_columns=prepared.frame.shape[1],
            schema=prepared.signature.model_dump(mode="json"),
        )
        warn = warn_once(on_event)
        with run_engine(*engine, run, on_event) as fold_engine:  # Ray: for training only
            ctx = RunContext(
                spec, prepared, tracker, run, on_event, catalogue, started, warn, fold_engine
            )
            if session is not None:
                assert spec.search is not None
                budget = spec.search.budget
                session.publish(
                    run_id=run.id,
                    fingerprint=prepared.fingerprint,
                    spec_hash=spec_hash(spec),
                    deadline=None if budget is None else time.time() + budget,
                    trials=spec.search.trials,
                )
                run.set_tags({"search.study": session.name})
            try:
                trained = train_candidates(ctx, session.search if session is not None else None)
            finally:
                if session is not None:
                    session.finish()
        candidates, search = trained.candidates, trained.search
        best = candidates[0]
        run.set_tags({"best_candidate": best.label, "task": prepared.task})
        threshold = _decision_threshold(spec, prepared, trained, run, on_event)
        on_event(Event("step", f"refitting {best.label} and evaluating on the holdout"))
        fit_started = time.monotonic()
        model, holdout = refit_best(ctx, best, threshold)
        scored = CardInputs(prepared, model, best, time.monotonic() - fit_started, 0.0)
        run.log_metrics(holdout.metrics)
        run.log_artifact("evaluation.json", json.dumps(holdout.to_dict(), indent=2).encode())
        _log_curves(run, prepared.task, holdout, on_event)
        if spec.split.refit == "all":  # the holdout has scored it: now no row is left out
            n_rows = len(prepared.train_idx) + len(prepared.test_idx)
            on_event(Event("step", f"refitting {best.label} on all {n_rows:,} rows"))
            model = refit_on_all(ctx, best, model)
        run.set_tags({"refit": spec.split.refit})
        on_event(Event("step", f"converting {best.label} to ONNX and checking it on the holdout"))
        budget = spec.search.budget if spec.search is not None else None
        # the conversion (in the helper process when there is one; else pure Python on a
        # thread, holding the interpreter lock) and the model card (of the holdout model) and
        # the report's plots (on this thread) overlap
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-onnx") as pool:
            converting = pool.submit(
                converter.export,
                model,
                prepared.signature,
                prepared.task,
                onnx_check_rows(prepared),
                threshold,
            )
            allowance = card_allowance(budget, time.monotonic() - started)
            card = dataclasses.replace(scored, deadline=time.monotonic() + allowance)
            model_card = build_card(spec, holdout, card, run, on_event)
            plots = report_plots(candidates, holdout, prepared.task, prepared.metric, on_event)
            parts = package_parts(spec, prepared, holdout, model)  # while the graph converts
            onnx, onnx_info = converting.result()
        run.set_tags({"runtime": "onnx" if onnx is not None else "sklearn"})
        on_event(Event("step", "registering the model"))
        result = register(
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
            threshold,
            parts,
        )
        on_event(Event("step", "writing the HTML report and the model card"))
        path = write_report(
            spec, inspection, result, holdout, lineage.git_commit, run, on_event, model_card, plots
        )
        return dataclasses.replace(result, report_path=path, search=search)


def _convert_in_helper(spec: ProjectSpec) -> bool:
    """Whether the run's search is long enough to hide the start of the conversion helper
    (about 5 s of CPU on the free core: ``HELPER_MIN_BUDGET``)."""
    budget = spec.search.budget if spec.search is not None else None
    return budget is not None and budget >= HELPER_MIN_BUDGET


@dataclasses.dataclass(frozen=True)
class WorkerResult:
    """What a worker of a shared search did.

    Attributes:
        lead_run_id: the lead's run (this worker's trials are its child runs).
        trials: trials this worker ran; ``complete`` of them finished.
        seconds: how long it searched.
        stopped_by: ``time``, ``trials``, ``lead`` (the lead finished) or ``exhausted``.
    """

    lead_run_id: str
    trials: int
    complete: int
    seconds: float
    stopped_by: str


def run_search_worker(
    spec: ProjectSpec,
    *,
    store: Store,
    study: str,
    worker: str | None = None,
    wait: float = 300.0,
    catalogue: Catalogue | None = None,
    on_event: EventHandler = ignore_events,
) -> WorkerResult:
    """Join a lead run's shared search (``run_project(..., study=NAME)``) and run trials until
    its budget is spent or the lead is done; each trial is a child run of the lead's run.

    The worker reads the same project file and data as the lead (checked by the data's
    fingerprint), so that every process cross-validates on the same split.

    Raises:
        TrainingError: no lead within ``wait`` seconds, other data than the lead's, or no
            ``search:`` section.
    """
    if spec.search is None:
        msg = f"a search worker needs a 'search:' section in {spec.locate()}"
        raise TrainingError(msg)
    catalogue = catalogue or default_catalogue()
    session = SharedSession(store, study, lead=False, worker=worker)
    on_event(Event("step", f"waiting for the lead of the shared search {study!r}"))
    manifest = session.wait_for_lead(wait)
    _, inspection = _load(spec, on_event)
    if inspection.fingerprint != manifest.fingerprint:
        msg = (
            f"this worker's data (fingerprint {inspection.fingerprint[:16]}) is not the lead's "
            f"({manifest.fingerprint[:16]}): run the worker on the same data and project file"
        )
        raise TrainingError(msg)
    prepared = _prepare(spec, inspection, catalogue, on_event)
    seconds = None if manifest.deadline is None else max(manifest.deadline - time.time(), 0.0)
    if manifest.state != "running" or (seconds is not None and seconds <= 0):
        return WorkerResult(manifest.run_id, 0, 0, 0.0, "lead")
    with Tracker(store) as tracker:
        found = search_trials(
            spec,
            prepared,
            catalogue=catalogue,
            tracker=tracker,
            on_event=on_event,
            warn=warn_once(on_event),
            budget=SearchBudget(seconds=seconds, trials=manifest.trials),
            parent_id=manifest.run_id,
            shared=session.search,
            should_stop=session.lead_done,
        )
    outcome = found.outcome
    complete = sum(1 for t in outcome.trials if t.state == "complete")
    return WorkerResult(
        manifest.run_id, len(outcome.trials), complete, outcome.seconds, outcome.stopped_by
    )


def _decision_threshold(
    spec: ProjectSpec, prepared: Prepared, trained: Trained, run: Run, on_event: EventHandler
) -> DecisionThreshold | None:
    """A binary model's decision threshold, tuned for ``imbalance.threshold`` on the best
    candidate's out-of-fold predictions (never on the holdout, which then scores it)."""
    metric = spec.imbalance.threshold
    classes = prepared.signature.classes
    if metric is None or prepared.task != "binary" or not classes:
        return None
    if trained.oof is None or trained.oof.ndim != 2:
        on_event(Event("warning", "imbalance.threshold: no out-of-fold predictions to tune on"))
        return None
    scored = np.isfinite(trained.oof[:, -1])  # the rows its folds held out (a search may run one)
    choice = tune_threshold(
        prepared.y.iloc[prepared.train_idx].to_numpy()[scored],
        trained.oof[scored, -1],
        positive_label=str(classes[-1]),
        metric=metric,
    )
    run.log_metrics(
        {
            "threshold": choice.threshold,
            f"threshold.oof_{metric}": choice.score,
            f"threshold.oof_{metric}_at_0.5": choice.default_score,
        }
    )
    on_event(
        Event(
            "step",
            f"decision threshold {choice.threshold:.3f} for {classes[-1]!r}: out-of-fold "
            f"{metric} {choice.score:.4f} (at 0.5: {choice.default_score:.4f})",
        )
    )
    return DecisionThreshold(choice.threshold, str(classes[-1]), metric)


def _log_curves(run: Run, task: str, holdout: Evaluation, on_event: EventHandler) -> None:
    """Store the holdout's ROC and PR curves as points (``curves.json``, classifiers only),
    for the UI to draw and overlay; a failure is a warning, never the run's end."""
    if holdout.y_true is None:
        return
    try:
        points = curve_points(task, holdout.y_true, holdout.proba, holdout.labels)
        if points is not None:
            data = json.dumps(points.to_dict(), separators=(",", ":")).encode()
            run.log_artifact(CURVES_ARTIFACT, data)
    except Exception as exc:  # the curves are a view of the holdout: the model stands without
        logger.warning("could not store the curves of run %s: %s", run.id, exc, exc_info=True)
        on_event(Event("warning", f"no {CURVES_ARTIFACT}: {type(exc).__name__}: {exc}"))


def _load(spec: ProjectSpec, on_event: EventHandler) -> tuple[pd.DataFrame, Inspection]:
    on_event(Event("step", f"loading {spec.data.source.type} data"))
    frame = sd.load_source(spec.data.source, spec.base_dir)
    on_event(Event("step", f"validating {len(frame):,} rows x {frame.shape[1]} columns"))
    return frame, inspect_data(spec, frame)


def _prepare(
    spec: ProjectSpec,
    inspection: Inspection,
    catalogue: Catalogue,
    on_event: EventHandler,
) -> Prepared:
    warnings = [r.to_sentence() for r in inspection.report.warnings]
    for message in warnings:
        on_event(Event("warning", message))
    on_event(Event("step", "checking the candidates and the split"))
    plan: Plan = preflight(spec, inspection, catalogue=catalogue)
    for finding in plan.leakage:  # a warning of the validation report, like the others
        inspection.report.results.append(finding.to_check())
        warnings.append(finding.message)
        on_event(Event("warning", finding.message))
    return Prepared(
        frame=plan.frame,
        x=plan.x,
        y=plan.y,
        task=inspection.task,
        metric=inspection.metric,
        signature=plan.signature,
        fingerprint=inspection.fingerprint,
        warnings=warnings,
        train_idx=plan.train_idx,
        test_idx=plan.test_idx,
        folds=plan.folds,
        estimators=plan.estimators,
    )


def _log_prepared(spec: ProjectSpec, inspection: Inspection, prepared: Prepared, run: Run) -> None:
    report = inspection.report
    run.log_artifact(
        "validation.json", json.dumps(report.to_dict(), indent=2, default=str).encode()
    )
    run.log_metrics(
        {"validation.errors": len(report.errors), "validation.warnings": len(report.warnings)}
    )
    run.log_params(
        _run_params(spec, prepared.task, prepared.metric, prepared.signature, len(prepared.frame))
    )
    run.log_artifact("signature.json", prepared.signature.to_json().encode())


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

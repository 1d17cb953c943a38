"""The run's report step: the HTML report (the model card), stored with the run."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from shipyard.errors import StoreError
from shipyard.evaluate import (
    CandidateRow,
    Evaluation,
    ModelCard,
    RunReport,
    build_model_card,
    render_report_plots,
    render_run_report,
)
from shipyard.pipeline._context import Prepared
from shipyard.pipeline._events import Event, EventHandler
from shipyard.pipeline._inspect import Inspection
from shipyard.pipeline._result import CandidateResult, RunResult
from shipyard.spec import ProjectSpec
from shipyard.tracking import Run

__all__ = [
    "CARD_SHARE",
    "CardInputs",
    "build_card",
    "card_allowance",
    "report_plots",
    "write_report",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardInputs:
    """What the model card is computed from.

    Attributes:
        prepared: the run's data.
        model: the fitted pipeline the holdout scored (fitted on the training part).
        best: the winning candidate (its CV folds).
        fit_seconds: how long that model's fit took (prices the learning curve).
        deadline: ``time.monotonic()`` by which the report, its card included, must be done.
    """

    prepared: Prepared
    model: Any
    best: CandidateResult
    fit_seconds: float
    deadline: float


def build_card(
    spec: ProjectSpec, holdout: Evaluation, card: CardInputs, run: Run, on_event: EventHandler
) -> ModelCard | None:
    """Compute the model card within ``card.deadline`` and store its numbers with the run
    (``model_card.json``, the ``card.seconds`` metric); ``None``, with a warning, when it
    fails: the run must not fail because a card section could not be computed.

    It needs only the holdout model, so the run computes it while the refit model converts to
    ONNX in another thread (the card's numerical work leaves the interpreter lock to the
    converter).
    """
    try:
        model_card = _card(spec, holdout, card, on_event)
        run.log_artifact("model_card.json", json.dumps(model_card.to_dict(), default=str).encode())
        run.log_metrics({"card.seconds": model_card.seconds})
    except Exception as exc:  # any section bug beyond what the card catches itself
        logger.warning("could not build the model card of run %s: %s", run.id, exc, exc_info=True)
        on_event(Event("warning", f"no model card: {type(exc).__name__}: {exc}"))
        return None
    return model_card


def write_report(
    spec: ProjectSpec,
    inspection: Inspection,
    result: RunResult,
    holdout: Evaluation,
    git_commit: str | None,
    run: Run,
    on_event: EventHandler,
    model_card: ModelCard | None = None,
    plots: list[tuple[str, str]] | None = None,
) -> str | None:
    """Store the HTML report, the model card's sections included (see :func:`build_card`); a
    failure here is reported but never fails the run.

    The model is registered (and maybe promoted) by now, so the run must not end as failed
    because a plot could not be drawn. ``plots`` are the report's plots drawn beforehand
    (:func:`report_plots`); without them they are drawn here.
    """
    try:
        report = _report(spec, inspection, result, holdout, git_commit)
        html = render_run_report(dataclasses.replace(report, card=model_card, plots=plots))
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


def report_plots(
    candidates: list[CandidateResult],
    holdout: Evaluation,
    task: str,
    metric: str,
    on_event: EventHandler,
) -> list[tuple[str, str]] | None:
    """The report's plots (the candidates' CV scores, the holdout's), drawn before the model
    is registered (the run draws them while its model converts); ``None``, with a warning,
    when one cannot be drawn (then :func:`write_report` tries again, and reports it)."""
    try:
        return render_report_plots(task, metric, _candidate_rows(candidates), holdout)
    except Exception as exc:  # any plotting bug: the report says so when it renders
        logger.warning("could not draw the report's plots: %s", exc, exc_info=True)
        on_event(Event("warning", f"report plots: {type(exc).__name__}: {exc}"))
        return None


def _candidate_rows(candidates: list[CandidateResult]) -> list[CandidateRow]:
    return [
        CandidateRow(c.label, c.model, c.cv_folds, c.cv_mean, c.cv_std, c.fit_seconds)
        for c in candidates
    ]


def _card(
    spec: ProjectSpec, holdout: Evaluation, inputs: CardInputs, on_event: EventHandler
) -> ModelCard:
    prepared = inputs.prepared
    train, test = prepared.train_idx, prepared.test_idx
    # the allowance is the whole report's: what follows the card (rendering its plots and the
    # page, storing them) keeps a share of it
    left = inputs.deadline - time.monotonic()
    plots = 2 if prepared.task == "regression" else 4  # the page's own (see render_run_report)
    render = RENDER_SECONDS + PLOT_SECONDS * plots
    deadline = inputs.deadline - min(render, max(left, 0.0) / 2)
    left = deadline - time.monotonic()
    on_event(Event("step", f"building the model card (within {max(left, 0.0):.1f} s)"))
    sensitive = None
    if spec.evaluation.sensitive:
        sensitive = prepared.frame[spec.evaluation.sensitive].iloc[test].reset_index(drop=True)
    return build_model_card(
        model=inputs.model,
        x_train=prepared.x.iloc[train],
        y_train=prepared.y.iloc[train],
        x_test=prepared.x.iloc[test],
        y_test=prepared.y.iloc[test],
        task=prepared.task,
        metric=prepared.metric,
        classes=prepared.signature.classes,
        options=spec.evaluation,
        seed=spec.seed,
        sensitive=sensitive,
        deadline=deadline,
        cv_folds=inputs.best.cv_folds,
        holdout=holdout,
        fit_seconds=inputs.fit_seconds,
    )


def _report(
    spec: ProjectSpec,
    inspection: Inspection,
    result: RunResult,
    holdout: Evaluation,
    git_commit: str | None,
) -> RunReport:
    candidates = _candidate_rows(result.candidates)
    assert inspection.signature is not None  # the run got past validation
    ran = min((len(c.cv_folds) for c in result.candidates if c.cv_folds), default=0)
    cv = f"{spec.split.cv_folds}-fold CV"
    if 0 < ran < spec.split.cv_folds:  # a search on a table large for its budget
        cv += f" (search trials on {'one fold' if ran == 1 else f'{ran} folds'})"
    facts = {
        "rows used": f"{result.n_rows:,} of {len(inspection.frame):,}",
        "data": f"{spec.data.source.type} source, fingerprint {result.dataset_fingerprint[:16]}",
        "split": f"{spec.split.strategy or 'default'} holdout of {spec.split.test_size:.0%}, {cv}",
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


#: Out of the report's allowance, what rendering and storing it keep from the card (at most
#: half the allowance): the page, and each of its matplotlib plots (measured on two cores:
#: 1.5 s for a classifier's four).
RENDER_SECONDS = 0.2
PLOT_SECONDS = 0.35

#: A search's budget share for the report and its model card (reserved by the search).
CARD_SHARE = 0.04


def card_allowance(budget: float | None, elapsed: float) -> float:
    """Seconds the report, its model card included, may take: ``CARD_SHARE`` of a search's
    budget (which reserves them), else a quarter of the run so far, at least 5 s (card
    sections past it are skipped, and say so)."""
    if budget is not None:
        return CARD_SHARE * budget
    return max(5.0, 0.25 * elapsed)

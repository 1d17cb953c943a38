"""The run's report step: the HTML report (the model card), stored with the run."""

from __future__ import annotations

import logging
import time

from shipyard.errors import StoreError
from shipyard.evaluate import CandidateRow, Evaluation, RunReport, render_run_report
from shipyard.pipeline._events import Event, EventHandler
from shipyard.pipeline._inspect import Inspection
from shipyard.pipeline._result import RunResult
from shipyard.spec import ProjectSpec
from shipyard.tracking import Run

__all__ = ["write_report"]

logger = logging.getLogger(__name__)


def write_report(
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

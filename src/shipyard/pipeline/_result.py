"""What a pipeline run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CandidateResult", "RunResult"]


@dataclass(frozen=True)
class CandidateResult:
    """One cross-validated candidate.

    Attributes:
        label: the candidate's name in the project file.
        model: the catalogue key.
        run_id: the child run that recorded it.
        cv_mean: mean CV metrics; ``cv_std`` their standard deviations.
        fit_seconds: total fitting time over the folds.
        cv_folds: every fold's metrics, in fold order.
        params: the parameters it was trained with (beyond its family's defaults).
        trees: the trees its fold models had on average (boosters with an ONNX converter;
            an ensemble's: its members'): what converting its refit costs.
    """

    label: str
    model: str
    run_id: str
    cv_mean: dict[str, float]
    cv_std: dict[str, float]
    fit_seconds: float
    cv_folds: list[dict[str, float]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    trees: float = 0.0


@dataclass(frozen=True)
class RunResult:
    """The outcome of ``shipyard run``.

    Attributes:
        run_id: the parent run.
        task, metric: the task and primary metric used.
        candidates: every candidate, best first.
        best: the winning candidate's label.
        holdout: the refit winner's metrics on the holdout set.
        model_name, model_version: the registered version.
        promoted: whether the version took ``alias``; ``gate`` says why or why not.
        dataset_fingerprint: the content hash of the data used.
        report_path: the run's HTML report, as an artifact path (``runs/ID/report.html``).
        runtime: what the server will run: ``onnx`` or ``sklearn``.
        onnx: how the ONNX conversion went (``status``, ``reason``, ``check``).
        search: for a run with ``search:``, what the search did: ``trials``, ``seconds``,
            ``stopped_by`` and the trials per ``state`` (``None`` without a search).
    """

    run_id: str
    task: str
    metric: str
    candidates: list[CandidateResult]
    best: str
    holdout: dict[str, float]
    model_name: str
    model_version: int
    alias: str | None
    promoted: bool
    gate: str
    dataset_fingerprint: str
    n_rows: int
    warnings: list[str] = field(default_factory=list)
    confusion_matrix: dict[str, Any] | None = None
    report_path: str | None = None
    runtime: str = "sklearn"
    onnx: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] | None = None

    @property
    def model_uri(self) -> str:
        """The URI of the registered version (by alias when it was promoted)."""
        if self.promoted and self.alias:
            return f"models:/{self.model_name}@{self.alias}"
        return f"models:/{self.model_name}/{self.model_version}"

"""Look at a project's data before training: target, task, metric, validation report.

``shipyard validate`` stops here; ``shipyard run`` goes on to train when there are no errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from shipyard import data as sd
from shipyard.errors import SpecError
from shipyard.evaluate import default_metric
from shipyard.spec import CLASSIFICATION_METRICS, REGRESSION_METRICS, ProjectSpec

__all__ = ["Inspection", "inspect_data", "inspect_project"]


@dataclass(frozen=True)
class Inspection:
    """What the data looks like to the project.

    Attributes:
        frame: the data as read: as loaded, with its columns of numbers read as numbers
            (see :func:`shipyard.data.read_numbers`).
        fingerprint: the content hash of the data as loaded.
        task: the declared or inferred task.
        metric: the primary metric (declared or the task's default).
        report: the validation report (schema health plus declared expectations).
        signature: the inputs and target the model would have; ``None`` when the report has
            errors (the signature is only built from data that passed).
    """

    frame: pd.DataFrame
    fingerprint: str
    task: str
    metric: str
    report: sd.ValidationReport
    signature: sd.Signature | None


def inspect_project(spec: ProjectSpec) -> Inspection:
    """Load the project's data source and inspect it (see :func:`inspect_data`)."""
    frame = sd.load_source(spec.data.source, spec.base_dir)
    return inspect_data(spec, frame)


def inspect_data(spec: ProjectSpec, frame: pd.DataFrame) -> Inspection:
    """Check the target, read numbers, settle task and metric, validate, infer the Signature.

    Columns of numbers with a few values that are not numbers are reported by the validation
    report: as errors, or as warnings when ``data.on_bad_numbers`` is ``coerce`` (the values
    are then missing in ``Inspection.frame``).

    Raises:
        SpecError: the target is not a column, or the metric does not fit the task.
        DataError: a feature named in the project file is not a column.
    """
    target = spec.data.target
    if target not in frame.columns:
        msg = (
            f"{spec.locate('data', 'target')}: target column {target!r} is not in the data; "
            f"columns are {list(frame.columns)}"
        )
        raise SpecError(msg)
    read, read_checks = sd.read_numbers(frame, spec)
    task = spec.task or sd.infer_task(read[target])
    metric = _check_metric(spec, task)
    report = sd.validate(
        read,
        expectations=spec.validation.expectations,
        target=target,
        max_missing_fraction=spec.validation.max_missing_fraction,
        checks=read_checks,
    )
    signature = None
    if report.ok:
        labelled = read[read[target].notna()].reset_index(drop=True)
        signature = sd.build_signature(labelled, spec, task)
    return Inspection(read, sd.fingerprint(frame), task, metric, report, signature)


def _check_metric(spec: ProjectSpec, task: str) -> str:
    metric = spec.metric or default_metric(task)
    allowed = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    if metric not in allowed:
        msg = (
            f"{spec.locate('metric')}: metric {metric!r} does not fit the {task} task; "
            f"expected one of {sorted(allowed)}"
        )
        raise SpecError(msg)
    return metric

"""The monitoring service: a served model's logged predictions tested against its reference.

:func:`check_model` resolves a model URI, reads that version's predictions in a time window
from the prediction log (:func:`shipyard.store.read_predictions`: only the window's files or
rows), tests every input column and the predictions against the package's reference sample
(:func:`shipyard.monitor.detect_drift`) and records the result as one point of the version's
monitoring time series (:class:`shipyard.registry.MonitorHistory`).

:func:`compare_files` is the same test on two files, with no model and no store.

Example:
    >>> result = check_model("models:/penguins@production", store=store,
    ...                      predictions=".shipyard/predictions", since="2024-05-01")
    ... # doctest: +SKIP
    >>> result.inputs.drifted, result.inputs.share_drifted  # doctest: +SKIP
    (False, 0.25)
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.data import Signature
from shipyard.errors import DataError, ShipyardError
from shipyard.model import ModelPackage
from shipyard.monitor import (
    AlertLine,
    Calibration,
    ColumnKind,
    DriftMethods,
    DriftReport,
    HistoryPoint,
    MonitorReport,
    PerformanceReport,
    Table,
    alert_signals,
    class_share_summary,
    compare_performance,
    detect_drift,
    evaluate_rules,
    fit_calibration,
    quantile_summary,
    render_monitor_report,
)
from shipyard.pipeline._alerts import AlertChannels, AlertOutcome, apply_alerts
from shipyard.pipeline._labels import as_text, log_column
from shipyard.pipeline._predict import read_table
from shipyard.registry import CheckRecord, LabelStore, MonitorHistory, Registry
from shipyard.spec import AlertsSpec, DriftSpec
from shipyard.store import Store, read_predictions

__all__ = [
    "MonitorResult",
    "ParquetTable",
    "check_model",
    "compare_files",
    "drift_report",
    "monitor_report",
    "parse_window",
    "read_pair",
]

_KINDS: dict[str, ColumnKind] = {
    "number": "numeric",
    "integer": "numeric",
    "boolean": "categorical",
    "category": "categorical",
    "string": "categorical",
}
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class MonitorResult:
    """One check of a model version.

    Attributes:
        model_name: the registered model.
        model_version: the version checked.
        window: the window's start and end (``None``: open on that side).
        inputs: the drift report of the model's input columns (the check's verdict).
        predictions: the drift report of its predictions.
        performance: the window's metrics: estimated from the probabilities (classifiers)
            and realised on the predictions that have labels, beside the holdout's.
        check: the recorded check (``None`` when not recorded).
        alerts: what the alert rules did (``None`` when none are configured).
        signals: what the check measured for the alert rules.
        samples: the reference and current frames the tests read (inputs, then
            predictions), kept for the HTML report.
    """

    model_name: str
    model_version: int
    window: tuple[datetime | None, datetime | None]
    inputs: DriftReport
    predictions: DriftReport
    performance: PerformanceReport
    check: CheckRecord | None = None
    alerts: AlertOutcome | None = None
    signals: dict[str, float] = dataclasses.field(default_factory=dict)
    samples: tuple[pd.DataFrame, ...] = dataclasses.field(default=(), repr=False)


def parse_window(text: str, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The window ``text`` (``30m``, ``6h``, ``1d``, ``2w``) back from ``now``.

    Raises:
        ValueError: ``text`` is not a number and one of the units s, m, h, d, w.
    """
    match = _WINDOW.match(text)
    if match is None:
        msg = f"window {text!r} is not a duration; expected e.g. 30m, 6h, 1d or 2w"
        raise ValueError(msg)
    end = now or datetime.now(UTC)
    span = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    return end - span, end


def check_model(
    model_uri: str,
    *,
    store: Store,
    predictions: str | os.PathLike[str],
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    options: DriftSpec | None = None,
    methods: DriftMethods | None = None,
    record: bool = True,
    alerts: AlertsSpec | None = None,
    channels: AlertChannels | None = None,
) -> MonitorResult:
    """Test one model version's logged predictions in a window against its reference.

    Args:
        model_uri: the model (``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``).
        store: the metadata store holding the registry.
        predictions: the prediction log (folder or SQLAlchemy URL, as ``shipyard serve
            --prediction-log`` takes it).
        since: the window's start (included); ``None`` for the log's first prediction.
        until: the window's end (excluded); ``None`` for the last.
        options: drift tests and thresholds (``monitoring.drift``).
        methods: the registered drift tests.
        record: record the check in the store's monitoring history.
        alerts: alert rules to evaluate on the check (``monitoring.alerts``); with
            ``record``, they open and resolve incidents and notify the ``channels``.
        channels: where alert notices go (the log and the configured webhook by default).

    Returns:
        Both drift reports, the performance, the recorded check and the alerts' outcome.

    Raises:
        ModelNotFoundError: the URI names no registered version.
        ShipyardError: the package has no reference sample, or the window holds no
            predictions of that version.
    """
    registry = Registry(store)
    version = registry.resolve(model_uri)
    package = registry.load(f"models:/{version.name}/{version.version}")
    if package.reference is None:
        msg = (
            f"model {version.name}/{version.version} was registered without a reference "
            "sample (before Shipyard kept one); run `shipyard run` again to register a "
            "version that can be monitored"
        )
        raise ShipyardError(msg)
    logged = read_predictions(
        predictions, model=version.name, since=since, until=until, version=version.version
    )
    start, end = _bound(since), _bound(until)
    if logged.empty:
        msg = (
            f"the prediction log at {predictions} holds no predictions of "
            f"{version.name}/{version.version} {_window_text(start, end)}; check the window "
            "and the log location (`shipyard serve --prediction-log`)"
        )
        raise ShipyardError(msg)
    inputs_ref = package.reference.inputs()
    kinds = input_kinds(package.signature, inputs_ref.columns)
    current = _logged_columns(logged, kinds, prefix="input.")
    inputs = detect_drift(inputs_ref, current, kinds=kinds, options=options, methods=methods)
    preds_ref = package.reference.predictions()
    pred_kinds = prediction_kinds(package, preds_ref.columns)
    current_preds = _logged_columns(logged, pred_kinds)
    outputs = detect_drift(
        preds_ref,
        current_preds,
        kinds=pred_kinds,
        options=_for_predictions(options),
        methods=methods,
    )
    performance = _performance(package, preds_ref, logged, LabelStore(store), version.name)
    shares = _class_shares(package, preds_ref, logged)
    summary: dict[str, Any] = {"uri": model_uri}
    distribution = _distribution(package, shares, preds_ref, current_preds)
    if distribution is not None:
        summary["distribution"] = distribution
    check = None
    if record:
        window = (
            (start or logged["ts"].iloc[0]).timestamp(),
            (end or logged["ts"].iloc[-1]).timestamp(),
        )
        check = MonitorHistory(store).record(
            version.name,
            version.version,
            inputs=inputs,
            predictions=outputs,
            performance=performance,
            window=window,
            summary=summary,
        )
    signals = alert_signals(inputs, outputs, performance, shares)
    outcome = None
    if alerts is not None and alerts.rules:
        if check is not None:
            outcome = apply_alerts(
                store,
                alerts,
                model=version.name,
                version=version.version,
                signals=signals,
                check_id=check.id,
                channels=channels,
            )
        else:  # not recorded: say which rules fire, but open and notify nothing
            outcome = AlertOutcome(tuple(evaluate_rules(alerts.rules, signals)))
    return MonitorResult(
        version.name,
        version.version,
        (start, end),
        inputs,
        outputs,
        performance,
        check,
        outcome,
        signals,
        (inputs_ref, current, preds_ref, current_preds),
    )


def monitor_report(result: MonitorResult, store: Store | None = None) -> str:
    """The check as one self-contained HTML page: verdict, drift tables, histograms of the
    drifted columns, prediction drift, performance (over time, from the store's history of
    this version's checks when ``store`` is given) and alerts."""
    history: list[HistoryPoint] = []
    if store is not None:
        for check in MonitorHistory(store).series(result.model_name, result.model_version):
            if result.check is not None and check.id == result.check.id:
                continue  # the report adds this check itself
            history.append(
                HistoryPoint(
                    at=check.window_end or check.created_at,
                    share_drifted=check.share_drifted,
                    drifted=check.drifted,
                    estimated={m.metric: m.estimated for m in check.performance},
                    realised={m.metric: m.realised for m in check.performance},
                )
            )
    lines: list[AlertLine] = []
    if result.alerts is not None:
        opened = {i.rule for i in result.alerts.opened}
        ongoing = {i.rule for i in result.alerts.ongoing}
        resolved = {i.rule for i in result.alerts.resolved}
        for outcome in result.alerts.rules:
            label = outcome.rule.label
            status = (
                "opened"
                if label in opened
                else "ongoing"
                if label in ongoing
                else "resolved"
                if label in resolved
                else "no data"
                if outcome.firing is None
                else "quiet"
            )
            lines.append(AlertLine(label, status, outcome.value))
    reference, current, *predictions = result.samples or (pd.DataFrame(), pd.DataFrame())
    return render_monitor_report(
        MonitorReport(
            title=f"{result.model_name}/{result.model_version}",
            window=result.window,
            inputs=result.inputs,
            predictions=result.predictions,
            performance=result.performance,
            reference=reference,
            current=current,
            reference_predictions=predictions[0] if predictions else None,
            current_predictions=predictions[1] if predictions else None,
            history=history,
            alerts=lines,
            created_at=datetime.now(UTC),
        )
    )


def drift_report(report: DriftReport, reference: Table, current: Table, title: str) -> str:
    """Two files' drift test as one self-contained HTML page (a table read column by column
    is read again, for the drifted columns' histograms only)."""
    return render_monitor_report(
        MonitorReport(
            title=title,
            window=(None, None),
            inputs=report,
            predictions=None,
            performance=None,
            reference=_drifted_frame(report, reference),
            current=_drifted_frame(report, current),
            created_at=datetime.now(UTC),
        )
    )


def _drifted_frame(report: DriftReport, table: Table) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    names = [c.column for c in report.columns if c.drifted]
    return pd.DataFrame({name: table[name] for name in names})


def _class_shares(
    package: ModelPackage, reference: pd.DataFrame, logged: pd.DataFrame
) -> tuple[dict[str, float], dict[str, float]] | None:
    """Each class's share of the predictions in the reference and in the window."""
    if package.classes is None or "prediction" not in reference.columns:
        return None

    def shares(values: pd.Series) -> dict[str, float]:
        out: dict[str, float] = {}  # counted by value, then named as text: no per-row work
        for value, share in values.value_counts(normalize=True).items():
            label = as_text(value)
            if label is not None:
                out[label] = out.get(label, 0.0) + float(share)
        return out

    return shares(reference["prediction"]), shares(logged["prediction"])


def _distribution(
    package: ModelPackage,
    shares: tuple[dict[str, float], dict[str, float]] | None,
    reference: pd.DataFrame,
    current: pd.DataFrame,
) -> dict[str, Any] | None:
    """The prediction distribution the check keeps: a classifier's class shares, a
    regression's deciles (reference and window; ``None`` when there are no predictions)."""
    if shares is not None:
        return class_share_summary(*shares)
    if package.task != "regression" or "prediction" not in reference.columns:
        return None

    def numbers(frame: pd.DataFrame) -> np.ndarray:
        values = pd.to_numeric(frame["prediction"], errors="coerce")
        return values.to_numpy(dtype=np.float64, na_value=np.nan)

    return quantile_summary(numbers(reference), numbers(current))


def _performance(
    package: ModelPackage,
    reference: pd.DataFrame,
    logged: pd.DataFrame,
    labels: LabelStore,
    model: str,
) -> PerformanceReport:
    """The window's metrics: estimated (classifiers), and realised where labels arrived."""
    classes = package.classes
    y_true = _join_labels(logged, labels, model)
    labelled = y_true.notna().to_numpy()
    proba = None
    calibration = None
    if classes is not None:
        columns = [f"proba.{c}" for c in classes]
        if all(c in logged.columns for c in columns):
            proba = logged[columns].to_numpy(dtype=np.float64, na_value=np.nan)
            calibration = _calibration(reference, columns, classes)
        y_pred: Any = logged["prediction"].map(as_text).to_numpy(dtype=object)
        truth: Any = y_true[labelled].to_numpy(dtype=object)
    else:
        y_pred = pd.to_numeric(logged["prediction"], errors="coerce").to_numpy(dtype=np.float64)
        truth = pd.to_numeric(y_true[labelled], errors="coerce").to_numpy(dtype=np.float64)
    if proba is not None and np.isnan(proba).any():
        proba = None  # a row logged without probabilities: estimate nothing rather than guess
    elif proba is not None:  # the log keeps float32 rounding: make each row sum to one again
        totals = proba.sum(axis=1, keepdims=True)
        proba = np.divide(proba, totals, out=np.zeros_like(proba), where=totals > 0)
    return compare_performance(
        package.task,
        dict(package.metadata.get("metrics", {})),
        y_pred=y_pred,
        proba=proba,
        classes=classes,
        y_true=truth,
        labelled=labelled,
        calibration=calibration,
    )


def _calibration(
    reference: pd.DataFrame, columns: list[str], classes: tuple[str, ...]
) -> Calibration | None:
    if "target" not in reference.columns or not all(c in reference.columns for c in columns):
        return None
    return fit_calibration(
        reference["target"].map(as_text).to_numpy(dtype=object),
        reference[columns].to_numpy(dtype=np.float64),
        classes,
    )


def _join_labels(logged: pd.DataFrame, labels: LabelStore, model: str) -> pd.Series:
    """Each logged prediction's label, where one arrived (by prediction id or key column)."""
    y_true = pd.Series(None, index=logged.index, dtype=object)
    for key_column in labels.key_columns(model):
        column = log_column(key_column)
        if column not in logged.columns:
            continue
        missing = y_true.isna()
        keys = logged.loc[missing, column].map(as_text)
        found = labels.lookup(model, key_column, keys.dropna())
        y_true.loc[missing] = keys.map(found)
    return y_true


def compare_files(
    reference: str | os.PathLike[str],
    current: str | os.PathLike[str],
    *,
    options: DriftSpec | None = None,
    methods: DriftMethods | None = None,
) -> DriftReport:
    """Test every column of ``reference`` (a CSV or Parquet file) in ``current``.

    Parquet files are read one column at a time, so memory follows a column, not the file.

    Raises:
        DataError: a file cannot be read, or ``current`` lacks one of ``reference``'s columns.
    """
    ref, cur = read_pair(reference, current)
    return detect_drift(ref, cur, options=options, methods=methods)


def read_pair(
    reference: str | os.PathLike[str], current: str | os.PathLike[str]
) -> tuple[Table, Table]:
    """Open two CSV or Parquet files that must have the same columns: a Parquet file as a
    :class:`ParquetTable` (read a column at a time), a CSV file as a DataFrame.

    Raises:
        DataError: a file cannot be read, or ``current`` lacks one of ``reference``'s columns.
    """
    ref, cur = _open_table(Path(reference)), _open_table(Path(current))
    missing = [c for c in ref.columns if c not in set(cur.columns)]
    if missing:
        msg = (
            f"{current} has no column {missing[0]!r}"
            + (f" (nor {missing[1:]})" if len(missing) > 1 else "")
            + f", which {reference} has; both files need the same columns"
        )
        raise DataError(msg)
    return ref, cur


def _open_table(path: Path) -> Table:
    if path.suffix.lower() in (".parquet", ".pq") and path.is_file():
        return ParquetTable(path)
    return read_table(path)


class ParquetTable:
    """A Parquet file read one column at a time (a :class:`~shipyard.monitor.ColumnTable`).

    Args:
        path: the file.

    Raises:
        DataError: the file is not Parquet or cannot be read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        try:
            meta = pq.ParquetFile(self.path)
        except (OSError, ValueError) as exc:
            msg = f"{self.path}: cannot read it as Parquet ({exc})"
            raise DataError(msg) from exc
        self._schema = meta.schema_arrow
        self._rows = meta.metadata.num_rows
        self.columns: list[str] = [
            name for name in self._schema.names if not name.startswith("__index_level_")
        ]

    def __len__(self) -> int:
        return int(self._rows)

    def __getitem__(self, name: str) -> pd.Series:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(self.path, columns=[name])
        except (OSError, ValueError) as exc:
            msg = f"{self.path}: cannot read column {name!r} ({exc})"
            raise DataError(msg) from exc
        column = table.column(0).to_pandas()
        del table
        pa.default_memory_pool().release_unused()  # the reader's buffers, before the next
        return column

    def column_kinds(self) -> dict[str, ColumnKind]:
        """Numbers are numeric, datetimes left out, booleans and everything else categorical."""
        import pyarrow as pa

        kinds: dict[str, ColumnKind] = {}
        for name in self.columns:
            kind = self._schema.field(name).type
            if pa.types.is_temporal(kind):
                continue
            numeric = (
                pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            )
            kinds[name] = "numeric" if numeric else "categorical"
        return kinds


def input_kinds(signature: Signature, columns: pd.Index) -> dict[str, ColumnKind]:
    """Each model input's drift kind from its signature (datetimes are not tested)."""
    present = {str(c) for c in columns}
    return {
        c.name: _KINDS[c.kind] for c in signature.inputs if c.kind in _KINDS and c.name in present
    }


def prediction_kinds(package: ModelPackage, columns: pd.Index) -> dict[str, ColumnKind]:
    """The predictions tested: the label or value, and the class probabilities (for a
    binary model only the positive class's, the other being its complement)."""
    kinds: dict[str, ColumnKind] = {
        "prediction": "numeric" if package.task == "regression" else "categorical"
    }
    probas = [str(c) for c in columns if str(c).startswith("proba.")]
    if package.task == "binary":
        probas = probas[-1:]
    kinds.update(dict.fromkeys(probas, "numeric"))
    return kinds


def _logged_columns(
    logged: pd.DataFrame, kinds: dict[str, ColumnKind], prefix: str = ""
) -> pd.DataFrame:
    """The log's columns ``prefix + name`` under their own names, numbers as numbers; a
    column the log does not have (a field never sent) is all missing."""
    frame = pd.DataFrame(index=logged.index)
    for name, kind in kinds.items():
        column = prefix + name
        if column not in logged.columns:
            frame[name] = pd.Series(float("nan"), index=logged.index)
        elif kind == "numeric":
            frame[name] = pd.to_numeric(logged[column], errors="coerce")
        else:
            frame[name] = logged[column]
    return frame


def _for_predictions(options: DriftSpec | None) -> DriftSpec:
    """The drift settings for prediction columns: the method, threshold and share, without
    the per-input-column settings."""
    if options is None:
        return DriftSpec()
    return options.model_copy(update={"columns": {}})


def _bound(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def _window_text(start: datetime | None, end: datetime | None) -> str:
    if start is None and end is None:
        return "at all"
    parts = []
    if start is not None:
        parts.append(f"from {start.isoformat()}")
    if end is not None:
        parts.append(f"until {end.isoformat()}")
    return " ".join(parts)

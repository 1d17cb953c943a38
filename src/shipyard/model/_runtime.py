"""Runtimes: what executes a fitted model on records or frames.

A :class:`Runtime` takes records (dicts keyed by column name, already validated against the
Signature) or a DataFrame, and returns :class:`Predictions`. Two implementations:

- :class:`SklearnRuntime` runs the fitted sklearn pipeline on a frame coerced to the Signature:
  the reference behaviour, used for everything the ONNX path cannot take.
- :class:`OnnxRuntime` runs the package's ONNX graph with onnxruntime on arrays built straight
  from the records, without pandas: the server's fast path.

Both give a row the same answer, to the bit, whatever batch it arrives in: BLAS and
onnxruntime take another code path for a single row (a matrix-vector product), so a batch of
one runs as two copies of the row. The ONNX graph reproduces the pipeline within the tolerance
recorded when it was checked (see :func:`compare_predictions`).

A binary model may carry a :class:`DecisionThreshold` (tuned in training, recorded in its
package): both runtimes then label a row positive when its probability of the positive class
is at least the threshold, instead of taking the most probable class. The probabilities are
the model's either way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from shipyard.data import Signature, coerce_frame
from shipyard.errors import PredictionError
from shipyard.model._predictions import Predictions

__all__ = [
    "DecisionThreshold",
    "OnnxRuntime",
    "Runtime",
    "RuntimeCheck",
    "SklearnRuntime",
    "compare_predictions",
]

logger = logging.getLogger(__name__)

_NUMERIC_KINDS = frozenset({"number", "integer", "boolean"})
_MISSING_TEXT = ""  # the ONNX graph's marker for a missing category (see train/_onnx.py)

Record = Mapping[str, Any]


@dataclass(frozen=True)
class DecisionThreshold:
    """A binary model's decision rule: ``positive`` when its probability is at least
    ``threshold``, the other class otherwise.

    Attributes:
        threshold: the probability of ``positive`` from which a row is labelled ``positive``.
        positive: the positive class.
        metric: the metric it was tuned for (for display; ``None`` when not known).
    """

    threshold: float
    positive: str
    metric: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (a model package's ``decision_threshold`` metadata)."""
        return {"threshold": self.threshold, "positive": self.positive, "metric": self.metric}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionThreshold:
        """Read :meth:`to_dict`'s fields (others, such as the tuning's scores, are ignored).

        Raises:
            PredictionError: ``threshold`` or ``positive`` is missing, or the threshold is not
                a number.
        """
        try:
            threshold = float(data["threshold"])
            positive = str(data["positive"])
        except (KeyError, TypeError, ValueError) as exc:
            msg = (
                f"a decision threshold needs a numeric 'threshold' and a 'positive' class; "
                f"found {dict(data)!r}"
            )
            raise PredictionError(msg) from exc
        metric = data.get("metric")
        return cls(threshold, positive, None if metric is None else str(metric))

    def check(self, task: str, classes: Sequence[str] | None) -> None:
        """Check the rule fits a model of ``task`` with these classes.

        Raises:
            PredictionError: the task is not binary or ``positive`` is not one of the classes.
        """
        labels = list(classes or ())
        if task != "binary" or len(labels) != 2 or self.positive not in labels:
            msg = (
                f"a decision threshold for class {self.positive!r} applies to a binary model "
                f"with that class; this model is {task} with classes {labels}"
            )
            raise PredictionError(msg)

    def labels(self, proba: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        """Each row's label under the rule, from probabilities in ``classes`` order."""
        j = list(classes).index(self.positive)
        negative = classes[1 - j]
        return np.where(proba[:, j] >= self.threshold, self.positive, negative).astype(object)


def _classified(
    proba: np.ndarray, classes: Sequence[str], threshold: DecisionThreshold | None
) -> Predictions:
    if threshold is None:
        return Predictions.from_probabilities(proba, classes)
    labels = threshold.labels(proba, classes)
    return Predictions(labels=labels, probabilities=proba, classes=tuple(classes))


class Runtime(Protocol):
    """Runs a model on records or frames."""

    name: str
    """``sklearn`` or ``onnx``: what ``/metadata`` and ``/metrics`` report."""

    def predict_records(self, records: Sequence[Record]) -> Predictions:
        """Predict for records keyed by column name (missing keys and ``None`` are missing)."""
        ...

    def predict_frame(self, frame: pd.DataFrame) -> Predictions:
        """Predict for the rows of a frame holding the Signature's columns."""
        ...


class SklearnRuntime:
    """Run the fitted sklearn pipeline.

    Args:
        pipeline: the fitted ``Pipeline`` (features + estimator).
        signature: its inputs; frames are coerced to it before predicting.
        task: ``binary``, ``multiclass`` or ``regression``.
        threshold: a binary model's decision threshold (``None``: the most probable class).

    Raises:
        PredictionError: a threshold for a model that is not binary or lacks its class.
    """

    name = "sklearn"

    def __init__(
        self,
        pipeline: Any,
        signature: Signature,
        task: str,
        *,
        threshold: DecisionThreshold | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.signature = signature
        self.task = task
        self.threshold = threshold
        self._columns = signature.input_names
        self._classes: tuple[str, ...] | None = None
        if task != "regression":
            self._classes = tuple(str(c) for c in pipeline.classes_)
        if threshold is not None:
            threshold.check(task, self._classes)

    def predict_records(self, records: Sequence[Record]) -> Predictions:
        """Predict for records (see :class:`Runtime`)."""
        return self.predict_frame(pd.DataFrame.from_records(list(records), columns=self._columns))

    def predict_frame(self, frame: pd.DataFrame) -> Predictions:
        """Predict for a frame, coerced to the Signature first.

        Raises:
            PredictionError: a column is missing, has the wrong type or an unknown category.
        """
        x = coerce_frame(frame, self.signature)
        n = len(x)
        x = _at_least_two_rows(x)
        if self.task == "regression":
            return Predictions(labels=np.asarray(self.pipeline.predict(x), dtype=float)).head(n)
        proba = np.asarray(self.pipeline.predict_proba(x), dtype=float)
        assert self._classes is not None
        return _classified(proba, self._classes, self.threshold).head(n)


class OnnxRuntime:
    """Run an ONNX graph from :func:`shipyard.train.convert_to_onnx` with onnxruntime.

    Args:
        model: the serialised ONNX model.
        signature: the inputs; each is one ``(n, 1)`` graph input.
        task: ``binary``, ``multiclass`` or ``regression``.
        classes: the class labels in the probability columns' order (classifiers).
        threads: onnxruntime's intra-op threads; 1 leaves the other cores to the HTTP workers.
        threshold: a binary model's decision threshold (``None``: the most probable class).

    Raises:
        PredictionError: the graph does not load, its inputs do not match the Signature, or
            a threshold is given for a model that is not binary or lacks its class.
    """

    name = "onnx"

    def __init__(
        self,
        model: bytes,
        signature: Signature,
        task: str,
        classes: Sequence[str] | None = None,
        *,
        threads: int = 1,
        threshold: DecisionThreshold | None = None,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            msg = f"cannot load the ONNX model: {exc}"
            raise PredictionError(msg) from exc
        self.signature = signature
        self.task = task
        self.classes = tuple(classes) if classes is not None else None
        if task != "regression" and not self.classes:
            msg = "an ONNX classifier needs its class labels"
            raise PredictionError(msg)
        if threshold is not None:
            threshold.check(task, self.classes)
        self.threshold = threshold
        # the graph's inputs follow the Signature's order; the converter may sanitise names
        graph_inputs = self._session.get_inputs()
        kinds = ["string" if "string" in i.type else "float" for i in graph_inputs]
        wanted = ["float" if c.kind in _NUMERIC_KINDS else "string" for c in signature.inputs]
        if kinds != wanted:
            msg = (
                f"the ONNX model's inputs ({len(kinds)}: {kinds}) differ from the Signature's "
                f"({len(wanted)}: {wanted})"
            )
            raise PredictionError(msg)
        pairs = list(zip(signature.inputs, graph_inputs, strict=True))
        # (column, graph input) pairs, by kind
        self._numeric = [(c.name, i.name) for c, i in pairs if c.kind in _NUMERIC_KINDS]
        self._text = [(c.name, i.name) for c, i in pairs if c.kind not in _NUMERIC_KINDS]
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = outputs[-1]  # classifiers: (label, probabilities); regressors: (variable,)

    def predict_records(self, records: Sequence[Record]) -> Predictions:
        """Predict for records (see :class:`Runtime`); no DataFrame is built."""
        n = len(records)
        records = _at_least_two(records)
        feed: dict[str, np.ndarray] = {}
        for column, name in self._numeric:
            values = [r.get(column) for r in records]
            feed[name] = np.array(values, dtype=np.float32).reshape(-1, 1)
        for column, name in self._text:
            texts = [_text(r.get(column)) for r in records]
            feed[name] = np.array(texts, dtype=object).reshape(-1, 1)
        return self._run(feed).head(n)

    def predict_frame(self, frame: pd.DataFrame) -> Predictions:
        """Predict for a frame, coerced to the Signature first (see :class:`Runtime`)."""
        x = coerce_frame(frame, self.signature)
        n = len(x)
        x = _at_least_two_rows(x)
        feed: dict[str, np.ndarray] = {}
        for column, name in self._numeric:
            values = x[column].to_numpy(dtype=np.float32, na_value=np.nan)
            feed[name] = values.reshape(-1, 1)
        for column, name in self._text:
            texts = [_text(v) for v in x[column].tolist()]
            feed[name] = np.array(texts, dtype=object).reshape(-1, 1)
        return self._run(feed).head(n)

    def _run(self, feed: dict[str, np.ndarray]) -> Predictions:
        (out,) = self._session.run([self._output], feed)
        if self.task == "regression":
            return Predictions(labels=np.asarray(out, dtype=float).reshape(-1))
        assert self.classes is not None
        return _classified(np.asarray(out, dtype=float), self.classes, self.threshold)


def _at_least_two(records: Sequence[Record]) -> Sequence[Record]:
    """A single record twice: see the module docstring (same bits alone and in a batch)."""
    return [records[0], records[0]] if len(records) == 1 else records


def _at_least_two_rows(x: pd.DataFrame) -> pd.DataFrame:
    """A one-row frame twice (see :func:`_at_least_two`), after coercion, so it is done once."""
    return pd.concat([x, x], ignore_index=True) if len(x) == 1 else x


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return _MISSING_TEXT
    return str(value)


@dataclass(frozen=True)
class RuntimeCheck:
    """How closely one runtime reproduced another on the same rows.

    Attributes:
        n_rows: rows compared.
        labels_equal: every predicted label (classifiers) is the same.
        max_abs_diff: the largest absolute difference of a probability or regression value.
        tolerance: the largest difference accepted.
        ok: labels equal and the difference within the tolerance.
        reason: why the check failed (empty when ``ok``).
    """

    n_rows: int
    labels_equal: bool
    max_abs_diff: float
    tolerance: float
    ok: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, for the package's metadata."""
        return {
            "n_rows": self.n_rows,
            "labels_equal": self.labels_equal,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
        }


def compare_predictions(
    reference: Predictions, candidate: Predictions, *, tolerance: float = 1e-4
) -> RuntimeCheck:
    """Compare a candidate runtime's predictions with the reference's on the same rows.

    Classifiers: labels must be equal and probabilities within ``tolerance``. Regressors:
    values within ``tolerance`` relative to ``max(1, |reference|)``.

    Example:
        >>> a = Predictions(labels=np.array([1.0, 2.0]))
        >>> compare_predictions(a, Predictions(labels=np.array([1.0, 2.00001]))).ok
        True
    """
    n = len(reference.labels)
    if len(candidate.labels) != n:
        return RuntimeCheck(n, False, float("inf"), tolerance, False, "row counts differ")
    if reference.probabilities is None:
        ref = np.asarray(reference.labels, dtype=float)
        scale = np.maximum(1.0, np.abs(ref))
        diff = np.abs(np.asarray(candidate.labels, dtype=float) - ref) / scale
        worst = float(np.nanmax(diff)) if n else 0.0
        ok = bool(worst <= tolerance)
        reason = "" if ok else f"values differ by up to {worst:.3g} (relative; allowed {tolerance})"
        return RuntimeCheck(n, True, worst, tolerance, ok, reason)
    mismatched = int(np.sum(np.asarray(reference.labels) != np.asarray(candidate.labels)))
    assert candidate.probabilities is not None
    worst = float(np.max(np.abs(candidate.probabilities - reference.probabilities))) if n else 0.0
    ok = mismatched == 0 and worst <= tolerance
    reasons = []
    if mismatched:
        reasons.append(f"{mismatched} of {n} labels differ")
    if worst > tolerance:
        reasons.append(f"probabilities differ by up to {worst:.3g} (allowed {tolerance})")
    return RuntimeCheck(n, mismatched == 0, worst, tolerance, ok, "; ".join(reasons))

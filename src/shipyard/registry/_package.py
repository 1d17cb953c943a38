"""The model package: everything needed to run a model, as a set of named files.

A package is pure data: the fitted sklearn pipeline (``pipeline.joblib``), its
:class:`~shipyard.data.Signature` (``signature.json``) and metadata (``metadata.json``:
name, version, task, metrics, lineage). The registry stores the files in the artifact
store with their sha256 and verifies them before anything is unpickled; a package never
reads or writes storage itself. New artifacts (a reference profile, an ONNX graph, a model
card) are new files: readers ignore files they do not know.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import pandas as pd

from shipyard.data import ReferenceProfile, Signature, coerce_frame
from shipyard.errors import StoreError

__all__ = ["PIPELINE_FILE", "ModelPackage", "Predictions"]

PIPELINE_FILE = "pipeline.joblib"
SIGNATURE_FILE = "signature.json"
METADATA_FILE = "metadata.json"
PROFILE_FILE = "profile.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Predictions:
    """A batch of predictions.

    Attributes:
        labels: predicted class labels (classifiers, as strings) or values (regression).
        probabilities: ``(n_rows, n_classes)`` class probabilities, ``None`` for regression.
        classes: the class labels in the probability columns' order.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None = None
    classes: tuple[str, ...] | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per input: ``prediction`` and, for classifiers, ``proba_<class>``."""
        out = pd.DataFrame({"prediction": self.labels})
        if self.probabilities is not None and self.classes is not None:
            for i, cls in enumerate(self.classes):
                out[f"proba_{cls}"] = self.probabilities[:, i]
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-ready records: ``{"prediction": ..., "probabilities": {class: p}}``."""
        labels = self.labels.tolist()
        if self.probabilities is None or self.classes is None:
            return [{"prediction": v} for v in labels]
        probs = self.probabilities.tolist()
        return [
            {"prediction": v, "probabilities": dict(zip(self.classes, p, strict=True))}
            for v, p in zip(labels, probs, strict=True)
        ]


@dataclass
class ModelPackage:
    """A fitted pipeline with its Signature and metadata.

    Attributes:
        pipeline: the fitted sklearn ``Pipeline`` (features + estimator).
        signature: the inputs it takes and the target it predicts.
        task: ``binary``, ``multiclass`` or ``regression``.
        metadata: name, version, metrics, lineage; JSON-serialisable.
        profile: the reference profile of the training inputs and holdout predictions, the
            baseline for drift monitoring (optional: ``profile.json``).
    """

    pipeline: Any
    signature: Signature
    task: str
    metadata: dict[str, Any] = field(default_factory=dict)
    profile: ReferenceProfile | None = None

    @property
    def is_classifier(self) -> bool:
        """Whether the model predicts classes."""
        return self.task in ("binary", "multiclass")

    def predict(self, frame: pd.DataFrame) -> Predictions:
        """Predict for the rows of ``frame``, coerced to the Signature first.

        Raises:
            PredictionError: a column is missing, has the wrong type or an unknown category.
        """
        x = coerce_frame(frame, self.signature)
        if not self.is_classifier:
            return Predictions(labels=np.asarray(self.pipeline.predict(x), dtype=float))
        proba = np.asarray(self.pipeline.predict_proba(x), dtype=float)
        classes = tuple(str(c) for c in self.pipeline.classes_)
        labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        return Predictions(labels=labels, probabilities=proba, classes=classes)

    def to_files(self) -> dict[str, bytes]:
        """Serialise to named files (the registry stores each with its sha256)."""
        buf = io.BytesIO()
        joblib.dump(self.pipeline, buf, compress=3)
        meta = {"format_version": FORMAT_VERSION, "task": self.task, **self.metadata}
        files = {
            PIPELINE_FILE: buf.getvalue(),
            SIGNATURE_FILE: self.signature.to_json().encode(),
            METADATA_FILE: json.dumps(meta, indent=2, sort_keys=True, default=str).encode(),
        }
        if self.profile is not None:
            files[PROFILE_FILE] = self.profile.to_json().encode()
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> ModelPackage:
        """Rebuild a package from files whose sha256 the caller has already verified.

        Raises:
            StoreError: a required file is missing or the format is newer than this Shipyard.
        """
        missing = [f for f in (PIPELINE_FILE, SIGNATURE_FILE, METADATA_FILE) if f not in files]
        if missing:
            msg = f"model package is incomplete: missing {missing}"
            raise StoreError(msg)
        meta = json.loads(files[METADATA_FILE])
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            msg = (
                f"model package format {meta['format_version']} is newer than this Shipyard "
                f"understands ({FORMAT_VERSION}); upgrade shipyard"
            )
            raise StoreError(msg)
        task = str(meta.pop("task"))
        meta.pop("format_version", None)
        pipeline = joblib.load(io.BytesIO(files[PIPELINE_FILE]))
        signature = Signature.from_json(files[SIGNATURE_FILE])
        profile = ReferenceProfile.from_json(files[PROFILE_FILE]) if PROFILE_FILE in files else None
        return cls(
            pipeline=pipeline, signature=signature, task=task, metadata=meta, profile=profile
        )

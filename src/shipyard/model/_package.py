"""The model package: everything needed to run a model, as a set of named files.

A package is pure data: the fitted sklearn pipeline (``pipeline.joblib``), its
:class:`~shipyard.data.Signature` (``signature.json``), metadata (``metadata.json``: name,
version, task, metrics, lineage, how the ONNX graph was checked), the reference profile
(``profile.json``) and sample (``reference_*.parquet``) and, where the pipeline converts, an
ONNX graph (``model.onnx``). A binary model's tuned decision threshold is metadata
(``decision_threshold``), which both runtimes apply. The registry stores the files in the
artifact store with their sha256 and verifies them before anything is unpickled; a package
never reads or writes storage itself. New artifacts are new files: readers ignore files they
do not know.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import joblib
import pandas as pd

from shipyard.data import PII_KEY_ENV, PiiKey, PiiPolicy, ReferenceProfile, Signature
from shipyard.errors import DataError, PredictionError, StoreError
from shipyard.model._predictions import Predictions
from shipyard.model._reference import (
    REFERENCE_INPUTS_FILE,
    REFERENCE_PREDICTIONS_FILE,
    ReferenceSample,
)
from shipyard.model._runtime import DecisionThreshold, OnnxRuntime, Runtime, SklearnRuntime

__all__ = [
    "DECISION_THRESHOLD_KEY",
    "ONNX_FILE",
    "PIPELINE_FILE",
    "ModelPackage",
    "serialise_pipeline",
]

logger = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.joblib"
SIGNATURE_FILE = "signature.json"
METADATA_FILE = "metadata.json"
PROFILE_FILE = "profile.json"
ONNX_FILE = "model.onnx"
FORMAT_VERSION = 1
DECISION_THRESHOLD_KEY = "decision_threshold"
"""The metadata key of a binary model's decision threshold: ``{"threshold": t, "positive":
class, "metric": name}`` (:meth:`DecisionThreshold.to_dict`, or the training's
``ThresholdChoice.to_dict()``, which adds its scores)."""

RuntimeChoice = Literal["auto", "onnx", "sklearn"]


@dataclass
class ModelPackage:
    """A fitted pipeline with its Signature and metadata.

    Attributes:
        pipeline: the fitted sklearn ``Pipeline`` (features + estimator).
        signature: the inputs it takes and the target it predicts.
        task: ``binary``, ``multiclass`` or ``regression``.
        metadata: name, version, metrics, lineage; JSON-serialisable. ``metadata["onnx"]``
            says whether the pipeline converted to ONNX and how the graph was checked;
            ``metadata["decision_threshold"]`` holds a binary model's decision threshold
            (see :attr:`decision_threshold`).
        profile: the reference profile of the training inputs and holdout predictions, the
            baseline for drift monitoring (optional: ``profile.json``).
        onnx: the pipeline as an ONNX graph, checked against it on the holdout (optional:
            ``model.onnx``).
        reference: a bounded sample of the training inputs and holdout predictions, for
            exact drift tests (optional: ``reference_inputs.parquet`` and
            ``reference_predictions.parquet``).
        pipeline_file: ``pipeline`` already serialised by :func:`serialise_pipeline`, stored
            as is (a run makes it while its ONNX graph converts); made on demand when absent.
    """

    pipeline: Any
    signature: Signature
    task: str
    metadata: dict[str, Any] = field(default_factory=dict)
    profile: ReferenceProfile | None = None
    onnx: bytes | None = None
    reference: ReferenceSample | None = None
    pipeline_file: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def is_classifier(self) -> bool:
        """Whether the model predicts classes."""
        return self.task in ("binary", "multiclass")

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The class labels in the probability columns' order (``None`` for regression)."""
        if not self.is_classifier:
            return None
        return tuple(str(c) for c in self.pipeline.classes_)

    @property
    def decision_threshold(self) -> DecisionThreshold | None:
        """The decision threshold the runtimes apply (``None``: the most probable class, as
        for packages made before thresholds were tuned).

        Raises:
            StoreError: the metadata holds a threshold that cannot be read or does not fit
                the model (not binary, or not one of its classes).
        """
        recorded = self.metadata.get(DECISION_THRESHOLD_KEY)
        if recorded is None:
            return None
        try:
            threshold = DecisionThreshold.from_dict(recorded)
            threshold.check(self.task, self.classes)
        except (PredictionError, AttributeError) as exc:
            msg = f"model package metadata {DECISION_THRESHOLD_KEY!r} is invalid: {exc}"
            raise StoreError(msg) from exc
        return threshold

    def predict(self, frame: pd.DataFrame) -> Predictions:
        """Predict for the rows of ``frame`` with the sklearn pipeline (the reference).

        Raises:
            PredictionError: a column is missing, has the wrong type or an unknown category.
        """
        return self.sklearn_runtime().predict_frame(frame)

    def sklearn_runtime(self) -> SklearnRuntime:
        """The sklearn pipeline as a :class:`~shipyard.model.Runtime`."""
        return SklearnRuntime(
            self.pipeline, self.signature, self.task, threshold=self.decision_threshold
        )

    def runtime(self, prefer: RuntimeChoice = "auto", *, threads: int = 1) -> Runtime:
        """The runtime to serve with: ONNX when the package has a checked graph, else sklearn.

        Args:
            prefer: ``auto`` (ONNX when present), ``onnx`` (required) or ``sklearn``.
            threads: onnxruntime's intra-op threads.

        Raises:
            StoreError: ``onnx`` was asked for and the package has no graph (the message says
                why the run could not convert it).
        """
        if prefer == "sklearn" or (prefer == "auto" and self.onnx is None):
            return self.sklearn_runtime()
        if self.onnx is None:
            why = self.metadata.get("onnx", {}).get("reason") or "it was registered without one"
            msg = f"this model package has no ONNX graph ({why}); serve it with sklearn"
            raise StoreError(msg)
        return OnnxRuntime(
            self.onnx,
            self.signature,
            self.task,
            self.classes,
            threads=threads,
            threshold=self.decision_threshold,
        )

    def pii_policy(self) -> PiiPolicy | None:
        """The personal-data fields its training declared (``features.pii``), with the key
        from ``SHIPYARD_PII_KEY`` when one is hashed; ``None`` when it has none.

        Raises:
            DataError: the package hashes a field and the key is unset, or is not the key its
                training used (told apart by key id, never by the key).
        """
        actions = self.metadata.get("pii") or {}
        if not actions:
            return None
        policy = PiiPolicy(dict(actions), PiiKey.from_env())
        if policy.hashed:
            name = self.metadata.get("name")
            key = policy.require_key(f"model {name!r}")
            trained = self.metadata.get("pii_key_id")
            if trained is not None and key.key_id != trained:
                msg = (
                    f"{PII_KEY_ENV} has key id {key.key_id}, but model {name!r} hashed its PII "
                    f"columns {policy.hashed} with key id {trained} in training: use the "
                    "training key, or hashed values will not join"
                )
                raise DataError(msg)
        return policy

    def to_files(self) -> dict[str, bytes]:
        """Serialise to named files (the registry stores each with its sha256)."""
        pipeline = self.pipeline_file
        meta = {"format_version": FORMAT_VERSION, "task": self.task, **self.metadata}
        files = {
            PIPELINE_FILE: pipeline if pipeline is not None else serialise_pipeline(self.pipeline),
            SIGNATURE_FILE: self.signature.to_json().encode(),
            METADATA_FILE: json.dumps(meta, indent=2, sort_keys=True, default=str).encode(),
        }
        if self.profile is not None:
            files[PROFILE_FILE] = self.profile.to_json().encode()
        if self.onnx is not None:
            files[ONNX_FILE] = self.onnx
        if self.reference is not None:
            files[REFERENCE_INPUTS_FILE] = self.reference.inputs_parquet
            files[REFERENCE_PREDICTIONS_FILE] = self.reference.predictions_parquet
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
        reference = None
        if REFERENCE_INPUTS_FILE in files and REFERENCE_PREDICTIONS_FILE in files:
            reference = ReferenceSample(
                files[REFERENCE_INPUTS_FILE], files[REFERENCE_PREDICTIONS_FILE]
            )
        return cls(
            pipeline=pipeline,
            signature=signature,
            task=task,
            metadata=meta,
            profile=profile,
            onnx=files.get(ONNX_FILE),
            reference=reference,
        )


def serialise_pipeline(pipeline: Any) -> bytes:
    """A fitted pipeline as the package's ``PIPELINE_FILE`` (joblib, compressed)."""
    buf = io.BytesIO()
    joblib.dump(pipeline, buf, compress=3)
    return buf.getvalue()

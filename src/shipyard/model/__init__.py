"""The model layer: the package format, predictions and the runtimes (sklearn, ONNX).

It knows nothing of where a model's files came from: the registry stores and loads packages,
and the server and batch prediction run them through a :class:`Runtime`.
"""

from shipyard.model._domain import DEFAULT_MARGIN, InputDomain, OutOfDomain
from shipyard.model._package import (
    DECISION_THRESHOLD_KEY,
    METADATA_FILE,
    ONNX_FILE,
    PIPELINE_FILE,
    ModelPackage,
    RuntimeChoice,
    serialise_pipeline,
)
from shipyard.model._predictions import Predictions
from shipyard.model._reference import ReferenceSample
from shipyard.model._runtime import (
    DecisionThreshold,
    OnnxRuntime,
    Runtime,
    RuntimeCheck,
    SklearnRuntime,
    compare_predictions,
)

__all__ = [
    "DECISION_THRESHOLD_KEY",
    "DEFAULT_MARGIN",
    "METADATA_FILE",
    "ONNX_FILE",
    "PIPELINE_FILE",
    "DecisionThreshold",
    "InputDomain",
    "ModelPackage",
    "OnnxRuntime",
    "OutOfDomain",
    "Predictions",
    "ReferenceSample",
    "Runtime",
    "RuntimeCheck",
    "RuntimeChoice",
    "SklearnRuntime",
    "compare_predictions",
    "serialise_pipeline",
]

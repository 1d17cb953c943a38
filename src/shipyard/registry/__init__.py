"""The model registry: versioned model packages, aliases and model URIs."""

from shipyard.model import ModelPackage, Predictions
from shipyard.registry._catalog import AliasMove, ModelRecord, VersionRecord
from shipyard.registry._registry import Registry
from shipyard.registry._uri import ModelRef, parse_model_uri

__all__ = [
    "AliasMove",
    "ModelPackage",
    "ModelRecord",
    "ModelRef",
    "Predictions",
    "Registry",
    "VersionRecord",
    "parse_model_uri",
]

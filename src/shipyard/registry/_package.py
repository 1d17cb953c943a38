"""Kept for imports written before the package format moved to :mod:`shipyard.model`."""

from shipyard.model._package import PIPELINE_FILE, ModelPackage
from shipyard.model._predictions import Predictions

__all__ = ["PIPELINE_FILE", "ModelPackage", "Predictions"]

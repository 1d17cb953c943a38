"""Training: the model catalogue, cross-validation and refitting."""

from shipyard.train._catalogue import Catalogue, CatalogueEntry, default_catalogue
from shipyard.train._cv import CVResult, cross_validate, make_pipeline, predict_evaluate, refit

__all__ = [
    "CVResult",
    "Catalogue",
    "CatalogueEntry",
    "cross_validate",
    "default_catalogue",
    "make_pipeline",
    "predict_evaluate",
    "refit",
]

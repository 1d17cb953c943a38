"""Training: the model catalogue, cross-validation, refitting and the budgeted search."""

from shipyard.train._catalogue import Catalogue, CatalogueEntry, default_catalogue
from shipyard.train._cv import CVResult, cross_validate, make_pipeline, predict_evaluate, refit
from shipyard.train._search import (
    Family,
    SearchBudget,
    SearchResult,
    StopTrial,
    Trial,
    TrialResult,
    budgeted_search,
    search_families,
)

__all__ = [
    "CVResult",
    "Catalogue",
    "CatalogueEntry",
    "Family",
    "SearchBudget",
    "SearchResult",
    "StopTrial",
    "Trial",
    "TrialResult",
    "budgeted_search",
    "cross_validate",
    "default_catalogue",
    "make_pipeline",
    "predict_evaluate",
    "refit",
    "search_families",
]

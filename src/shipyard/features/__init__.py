"""Feature pipelines: a Signature becomes one sklearn ColumnTransformer."""

from shipyard.features._builder import MISSING_CATEGORY, build_features
from shipyard.features._datetime import DatetimeFeatures

__all__ = ["MISSING_CATEGORY", "DatetimeFeatures", "build_features"]

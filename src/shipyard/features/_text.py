"""TF-IDF features of a free-text column (``features.text``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from shipyard.spec import TextSpec

__all__ = ["documents", "text_pipeline"]


def documents(X: Any) -> np.ndarray:
    """One text column (a one-column frame or array) as a 1-D array of ``str``, missing as ``""``.

    Example:
        >>> documents(pd.DataFrame({"t": ["a b", None]})).tolist()
        ['a b', '']
    """
    column = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.asarray(X)[:, 0])
    missing = column.isna().to_numpy()
    return np.where(missing, "", column.astype(str).to_numpy(dtype=object)).astype(object)


def text_pipeline(spec: TextSpec) -> Pipeline:
    """Missing text as ``""``, then TF-IDF with the spec's options.

    Terms are words of two or more letters or digits, lowercased; the vocabulary is the
    ``max_features`` most frequent terms (n-grams of 1 to ``ngram_max`` words) found in at
    least ``min_df`` training rows; term frequencies are sublinear (``1 + log(tf)``) and each
    row is L2-normalised. The output is a sparse matrix.
    """
    return Pipeline(
        [
            ("documents", FunctionTransformer(documents, feature_names_out="one-to-one")),
            (
                "tfidf",
                TfidfVectorizer(
                    max_features=spec.max_features,
                    ngram_range=(1, spec.ngram_max),
                    min_df=spec.min_df,
                    sublinear_tf=True,
                ),
            ),
        ]
    )

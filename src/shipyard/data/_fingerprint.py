"""Content fingerprints of datasets: the cache key and lineage id of a snapshot."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd

__all__ = ["fingerprint"]

logger = logging.getLogger(__name__)


def fingerprint(df: pd.DataFrame) -> str:
    """The sha256 (hex) of a frame's column names, dtypes, order and content.

    The index is ignored and so is memory layout (a copy, a slice re-assembled or a
    differently consolidated frame hash the same); any changed cell, column name, dtype or
    column order changes the result.

    Args:
        df: the data.

    Returns:
        64 hex characters.

    Example:
        >>> fingerprint(pd.DataFrame({"a": [1]})) == fingerprint(pd.DataFrame({"a": [1]}))
        True
    """
    digest = hashlib.sha256()
    digest.update(f"shipyard-fingerprint-v1 rows={len(df)} cols={df.shape[1]}\n".encode())
    for position in range(df.shape[1]):
        column = df.iloc[:, position]
        header = f"{df.columns[position]!r}\x1f{column.dtype}\n"
        digest.update(header.encode())
        hashes = pd.util.hash_pandas_object(column, index=False).to_numpy(dtype=np.uint64)
        digest.update(np.ascontiguousarray(hashes).tobytes())
    return digest.hexdigest()

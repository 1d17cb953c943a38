"""Model execution, apart from the HTTP request path.

The HTTP layer hands validated records to a :class:`ModelRunner` and gets JSON-ready
predictions back; batching, alternative runtimes and canary routing belong here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pandas as pd

from shipyard.serve._schema import example_record

if TYPE_CHECKING:
    from shipyard.registry._package import ModelPackage

__all__ = ["ModelRunner"]

logger = logging.getLogger(__name__)


class ModelRunner:
    """Run a model package on batches of records.

    Args:
        package: the fitted model package to run.

    Example:
        >>> runner = ModelRunner(package)  # doctest: +SKIP
        >>> runner.warm_up()  # doctest: +SKIP
        >>> runner.predict([{"island": "Biscoe", ...}])  # doctest: +SKIP
        [{'prediction': 'Adelie', 'probabilities': {...}}]
    """

    def __init__(self, package: ModelPackage) -> None:
        self.package = package
        self._columns = package.signature.input_names
        self._ready = False

    @property
    def ready(self) -> bool:
        """Whether a warm-up prediction has succeeded."""
        return self._ready

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Predict for a batch of records keyed by column name.

        Args:
            records: one dict per row; missing keys become nulls.

        Returns:
            One JSON-ready dict per record: ``prediction`` and, for classifiers,
            ``probabilities`` (class -> probability).

        Raises:
            PredictionError: a value does not fit the model's Signature.
        """
        frame = pd.DataFrame.from_records(records, columns=self._columns)
        return self.package.predict(frame).to_records()

    def warm_up(self, record: dict[str, Any] | None = None) -> bool:
        """Predict once on an example record; mark the runner ready on success.

        Args:
            record: the record to predict on; defaults to the Signature's example record.

        Returns:
            Whether the warm-up prediction succeeded (failures are logged, not raised).
        """
        try:
            self.predict([record or example_record(self.package.signature)])
        except Exception:
            logger.exception("warm-up prediction failed; the server stays not ready")
            self._ready = False
        else:
            logger.info("warm-up prediction succeeded; the model is ready")
            self._ready = True
        return self._ready

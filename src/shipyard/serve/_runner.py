"""Model execution, apart from the HTTP request path.

The HTTP layer hands validated records to a :class:`ModelRunner` and awaits JSON-ready
predictions. The runner owns the model's :class:`~shipyard.model.Runtime` (ONNX when the
package has a checked graph, else sklearn) and a :class:`~shipyard.serve._batcher.MicroBatcher`
that scores concurrent requests together on one model thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.serve._batcher import BatchHook, BatchingConfig, MicroBatcher
from shipyard.serve._schema import example_record

if TYPE_CHECKING:
    from shipyard.model import ModelPackage, Runtime, RuntimeChoice

__all__ = ["ModelRunner"]

logger = logging.getLogger(__name__)


class ModelRunner:
    """Run a model package on records, batching concurrent requests.

    Args:
        package: the fitted model package to run.
        runtime: ``auto`` (ONNX when the package has a graph), ``onnx`` or ``sklearn``.
        batching: batch size, wait, queue bound and timeout.
        on_batch: called after each model call with its rows, requests and seconds.

    Example:
        >>> runner = ModelRunner(package)  # doctest: +SKIP
        >>> runner.warm_up()  # doctest: +SKIP
        >>> await runner.submit([{"island": "Biscoe", ...}])  # doctest: +SKIP
        [{'prediction': 'Adelie', 'probabilities': {...}}]
    """

    def __init__(
        self,
        package: ModelPackage,
        *,
        runtime: RuntimeChoice = "auto",
        batching: BatchingConfig | None = None,
        on_batch: BatchHook | None = None,
    ) -> None:
        self.package = package
        self.runtime: Runtime = package.runtime(runtime)
        self.batcher = MicroBatcher(self.predict, batching, on_batch=on_batch)
        self._ready = False

    @property
    def ready(self) -> bool:
        """Whether a warm-up prediction has succeeded."""
        return self._ready

    def predict(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Predict for records keyed by column name, on the calling thread.

        Args:
            records: one dict per row; missing keys and ``None`` are missing values.

        Returns:
            One JSON-ready dict per record: ``prediction`` and, for classifiers,
            ``probabilities`` (class -> probability).

        Raises:
            PredictionError: a value does not fit the model's Signature.
        """
        return self.runtime.predict_records(records).to_records()

    async def submit(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Predict through the batcher (see :meth:`MicroBatcher.submit` for its errors)."""
        return await self.batcher.submit(records)

    def open(self) -> None:
        """Accept work (again, after :meth:`close`)."""
        self.batcher.open()

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
            logger.info("warm-up prediction succeeded (%s runtime); ready", self.runtime.name)
            self._ready = True
        return self._ready

    async def close(self, timeout: float | None = None) -> None:
        """Refuse new work and finish what was admitted (see :meth:`MicroBatcher.close`)."""
        self._ready = False
        await self.batcher.close(timeout)

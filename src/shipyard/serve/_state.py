"""What the server's routes share: settings, limits, metrics and the models' slots.

Up to three versions run at once: the **primary** (:attr:`ServerState.slot`), a **canary**
that answers a configured share of requests, and a **shadow** that scores a copy of every
request whose answers are compared and counted, never returned.

The model a server runs lives in a :class:`ModelSlot` (package, runner, request parser,
response identity). Hot reload builds a new slot beside the live one, warms it up, then swaps
``ServerState.slot`` in one assignment; a request takes the slot once and uses it to the end,
so it is answered wholly by one version, and the old slot is closed only when none of its
requests is left.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shipyard.data import PiiPolicy
from shipyard.model import InputDomain
from shipyard.serve._config import ServeConfig
from shipyard.serve._limits import RequestLimits, request_limits
from shipyard.serve._metrics import ServeMetrics
from shipyard.serve._predlog import PredictionLog
from shipyard.serve._runner import ModelRunner
from shipyard.serve._schema import (
    RecordParser,
    build_record_model,
    example_record,
    model_class_name,
)
from shipyard.store import open_sink

if TYPE_CHECKING:
    from shipyard.model import ModelPackage

__all__ = ["ModelSlot", "ServerState"]


@dataclass
class ModelSlot:
    """One model version ready to serve.

    Attributes:
        package: the model package.
        runner: its runtime and batcher.
        record_model: the request record model generated from its Signature.
        parser: validates request bodies against ``record_model``.
        model_info: ``{"name", "version"}`` as responses report it.
        headers: the response headers naming the version (``x-shipyard-model``).
        pii: its personal-data fields (``features.pii`` in training), dropped or hashed
            before a record is logged; ``None`` when it has none.
        domain: its training inputs' domain, to flag records outside it; ``None`` when the
            package has no profile or the server checks nothing (``--ood off``).
        active: requests using this slot right now.
    """

    package: ModelPackage
    runner: ModelRunner
    record_model: type[BaseModel]
    parser: RecordParser
    model_info: dict[str, str | None]
    headers: list[tuple[bytes, bytes]]
    domain: InputDomain | None = None
    pii: PiiPolicy | None = None
    active: int = 0

    def example(self) -> dict[str, Any]:
        """The Signature's example record, validated as a request record would be."""
        record = self.record_model.model_validate(example_record(self.package.signature))
        return record.model_dump(by_alias=True)


def model_identity(package: ModelPackage) -> dict[str, str | None]:
    """``{"name", "version"}`` of a package, from its metadata."""
    version = package.metadata.get("version")
    return {
        "name": package.metadata.get("name"),
        "version": None if version is None else str(version),
    }


@dataclass
class ServerState:
    """Everything the routes share, built once per app; the model is in :attr:`slot`.

    The request limits and the record model's name come from the first package: a later
    version served by hot reload keeps them (the middleware and the OpenAPI route are fixed).

    Attributes:
        package: the first model package (see :attr:`slot` for the live one).
        config: the server's settings.
    """

    package: ModelPackage
    config: ServeConfig
    limits: RequestLimits = field(init=False)
    metrics: ServeMetrics = field(init=False)
    slot: ModelSlot = field(init=False)
    reloads: int = field(default=0, init=False)
    canary: ModelSlot | None = field(default=None, init=False)
    canary_share: float = field(default=0.0, init=False)
    shadow: ModelSlot | None = field(default=None, init=False)
    predlog: PredictionLog | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.limits = request_limits(self.config, self.package.signature)
        batching = self.config.batching
        if self.limits.max_records > batching.max_queue_rows:
            msg = (
                f"the batching queue ({batching.max_queue_rows} rows) cannot hold one request "
                f"of --max-records {self.limits.max_records}; raise --max-queue-rows or lower "
                "--max-records"
            )
            raise ValueError(msg)
        runner = ModelRunner(self.package, runtime=self.config.runtime, batching=batching)
        self.metrics = ServeMetrics(**model_identity(self.package), runtime=runner.runtime.name)
        self.slot = self.build_slot(self.package, runner)
        self.metrics.watch_queue(lambda: self.slot.runner.batcher.queued_rows)
        self.predlog = self._open_prediction_log()

    def _open_prediction_log(self) -> PredictionLog | None:
        sink = open_sink(self.config.prediction_log)  # connects to nothing yet
        if sink is None:
            return None
        buffer = self.config.prediction_log_buffer
        if self.limits.max_records > buffer.max_buffer_records:
            msg = (
                f"the prediction log's buffer ({buffer.max_buffer_records} records) cannot hold "
                f"one request of --max-records {self.limits.max_records}; raise "
                "--prediction-log-buffer or lower --max-records"
            )
            raise ValueError(msg)
        log = PredictionLog(sink, buffer)
        self.metrics.watch_prediction_log(log.stats)
        return log

    def build_slot(self, package: ModelPackage, runner: ModelRunner | None = None) -> ModelSlot:
        """A slot for ``package`` (not yet warmed up), wired to this server's metrics."""
        if runner is None:
            runner = ModelRunner(
                package, runtime=self.config.runtime, batching=self.config.batching
            )
        runner.batcher.on_batch = self.metrics.observe_batch
        info = model_identity(package)
        prefix = model_class_name(model_identity(self.package)["name"])
        pii = package.pii_policy()
        record_model = build_record_model(
            package.signature,
            name=f"{prefix}Record",
            extra=self.config.extra_fields,
            pii=pii.actions if pii is not None else None,
        )
        parser = RecordParser(
            record_model,
            max_records=self.limits.max_records,
            on_ignored=self.metrics.count_ignored,
            protect=None if pii is None else pii.protector(f"model {info['name']}"),
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"x-shipyard-model", f"{info['name']}/{info['version']}".encode()),
        ]
        domain = None
        if self.config.ood != "off" and package.profile is not None:
            domain = InputDomain.from_profile(
                package.profile.inputs, package.signature, margin=self.config.ood_margin
            )
        return ModelSlot(package, runner, record_model, parser, info, headers, domain, pii)

    def add_canary(self, package: ModelPackage, share: float) -> None:
        """Send ``share`` (0 < share < 1) of requests, chosen at random, to ``package``."""
        if not 0 < share < 1:
            msg = f"the canary share must be between 0 and 1 (exclusive), found {share}"
            raise ValueError(msg)
        self.canary, self.canary_share = self.build_slot(package), share

    def add_shadow(self, package: ModelPackage) -> None:
        """Score a copy of every request with ``package``; compare, count, never answer."""
        self.shadow = self.build_slot(package)

    def route(self) -> tuple[ModelSlot, str]:
        """The slot to answer a request, and its role (``primary`` or ``canary``)."""
        if self.canary is not None and random.random() < self.canary_share:
            return self.canary, "canary"
        return self.slot, "primary"

    def slots(self) -> list[ModelSlot]:
        """Every slot in use: primary, canary, shadow."""
        return [s for s in (self.slot, self.canary, self.shadow) if s is not None]

    # the live slot's parts, for routes that take them one at a time
    @property
    def runner(self) -> ModelRunner:
        """The live model's runner."""
        return self.slot.runner

    @property
    def parser(self) -> RecordParser:
        """The live model's request parser."""
        return self.slot.parser

    @property
    def record_model(self) -> type[BaseModel]:
        """The live model's record model."""
        return self.slot.record_model

    @property
    def model_info(self) -> dict[str, str | None]:
        """The live model's name and version."""
        return self.slot.model_info

    def example(self) -> dict[str, Any]:
        """The live model's example record."""
        return self.slot.example()

    def metadata(self) -> dict[str, Any]:
        """The live model's description served at ``GET /metadata``."""
        slot = self.slot
        meta = slot.package.metadata
        signature = slot.package.signature
        return {
            **slot.model_info,
            "task": slot.package.task,
            "classes": list(signature.classes) if signature.classes else None,
            "signature": signature.model_dump(mode="json"),
            "metrics": meta.get("metrics", {}),
            "lineage": meta.get("lineage", {}),
            "runtime": slot.runner.runtime.name,
            "onnx": meta.get("onnx", {}),
            "batching": self.config.batching.model_dump(),
            "reloads": self.reloads,
            "canary": None
            if self.canary is None
            else {**self.canary.model_info, "share": self.canary_share},
            "shadow": None if self.shadow is None else self.shadow.model_info,
        }

"""The prediction server's settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shipyard.model import DEFAULT_MARGIN
from shipyard.serve._batcher import BatchingConfig
from shipyard.serve._predlog import PredictionLogConfig
from shipyard.serve._ratelimit import RateLimit

__all__ = ["ServeConfig"]


class ServeConfig(BaseModel):
    """Settings of one prediction server app.

    The two request limits agree by default: a list of ``max_records`` records fits in
    ``max_body_bytes`` even when every value is as long as the Signature allows (see
    :func:`shipyard.serve._limits.request_limits`). Leave a limit unset (``None``) to derive it
    from the other one and the model's Signature.

    Attributes:
        max_body_bytes: largest request body accepted; larger bodies get a 413 before being
            read whole. Unset: room for ``max_records`` records of the model's longest values,
            at least 1 MiB.
        max_records: most records one ``POST /predict`` may carry (a 413 past it). Unset:
            10,000, or as many as fit in ``max_body_bytes`` when only that is set (and in
            16 MiB when neither is, for a model so wide that 10,000 records would not).
        extra_fields: ``ignore`` (the default) drops a field the model does not take and
            counts it in ``/metrics`` (``shipyard_ignored_fields_total``), so clients that send
            whole rows, or a field a newer model version dropped, keep working; ``forbid``
            (``--strict-inputs``) refuses such a record with a 422 naming the field.
        title: the OpenAPI title; defaults to the model's name.
        runtime: ``auto`` runs the package's ONNX graph when it has one, else sklearn;
            ``onnx`` requires the graph; ``sklearn`` always runs the pipeline.
        batching: how concurrent requests are batched and admitted (queue bound, timeout).
        prediction_log: where every answered prediction is logged: a folder or ``file://``
            URL (Parquet, partitioned by model, version and day), a SQLAlchemy URL (a
            ``prediction_log`` table), or ``None``/``"off"`` for no log.
        prediction_log_buffer: the log's in-memory bound and flush cadence.
        api_key_digests: sha256 hex digests of the accepted API keys (see
            :func:`shipyard.serve._auth.load_api_keys`); empty: no key needed. Only digests,
            so the settings can be printed or logged safely.
        api_key_roles: a digest's role when it is not ``admin``: ``predict`` (the predict
            endpoints only) or ``read`` (metadata and metrics only); a 403 otherwise.
        ood: what to do with a record whose inputs lie outside the training data (see
            :class:`shipyard.model.InputDomain`): ``flag`` (the default) answers it, counts
            it in ``/metrics`` and marks it in the prediction log's ``ood`` column;
            ``reject`` refuses it with a 422 naming the field; ``off`` checks nothing.
        ood_margin: how far past the training range a number may go before it counts, as
            a share of the range's width.
        rate_limit: requests per client (per API key, else per address) this process
            admits; beyond it a 429 with ``Retry-After`` (see ``serve/_ratelimit.py``).

    Example:
        >>> ServeConfig(max_records=100).max_records
        100
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int | None = Field(default=None, gt=0)
    max_records: int | None = Field(default=None, gt=0)
    extra_fields: Literal["forbid", "ignore"] = "ignore"
    title: str | None = None
    runtime: Literal["auto", "onnx", "sklearn"] = "auto"
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    prediction_log: str | None = None
    prediction_log_buffer: PredictionLogConfig = Field(default_factory=PredictionLogConfig)
    api_key_digests: tuple[str, ...] = ()
    api_key_roles: dict[str, Literal["predict", "read", "admin"]] = Field(default_factory=dict)
    ood: Literal["off", "flag", "reject"] = "flag"
    ood_margin: float = Field(default=DEFAULT_MARGIN, ge=0, allow_inf_nan=False)
    rate_limit: RateLimit | None = None

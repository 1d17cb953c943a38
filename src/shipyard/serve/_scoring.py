"""Request steps shared by ``/predict`` and the V2 inference route: ids, headers, the shadow."""

from __future__ import annotations

import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from shipyard.serve._batcher import Overloaded
from shipyard.serve._schema import InvalidRequestError

if TYPE_CHECKING:
    from shipyard.serve._state import ModelSlot, ServerState

__all__ = ["header", "request_id", "screen", "shadow_score"]

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def header(scope: Scope, name: bytes) -> str:
    """A request header's value (latin-1, as HTTP has it), or ``""``."""
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), "")


def request_id(scope: Scope, *fallbacks: str | None) -> str:
    """The client's ``X-Request-ID`` when it is a plain token (letters, digits, ``._:-``, at
    most 64), else the first fallback that is one (the V2 ``id``), else a new random id."""
    for given in (header(scope, b"x-request-id"), *fallbacks):
        if given and _REQUEST_ID.fullmatch(given):
            return given
    return uuid.uuid4().hex


def screen(
    state: ServerState, slot: ModelSlot, records: list[dict[str, Any]], *, is_batch: bool
) -> list[str | None] | None:
    """Check records against the slot's training domain (``--ood``).

    Returns:
        Per record, its fields outside the domain as ``field:reason;...`` (``None`` for a
        record inside it), for the prediction log; ``None`` when no record is outside.

    Raises:
        InvalidRequestError: under ``--ood reject``, a 422 naming each record and field.
    """
    if slot.domain is None:
        return None
    found = slot.domain.check(records)
    if not any(found):
        return None
    reject = state.config.ood == "reject"
    state.metrics.count_out_of_distribution(found, rejected=reject)
    if reject:
        detail = []
        for i, issues in enumerate(found):
            for issue in issues:
                where = f"record {i}: " if is_batch else ""
                entry = {
                    "field": issue.field,
                    "loc": ["body", *([i] if is_batch else []), issue.field],
                    "msg": f"{where}{issue.message} (this server refuses out-of-distribution "
                    "inputs: --ood reject)",
                    "input": records[i].get(issue.field),
                    "type": f"out_of_distribution.{issue.reason}",
                }
                if is_batch:
                    entry["record"] = i
                detail.append(entry)
        raise InvalidRequestError(detail)
    return [";".join(issue.tag for issue in issues) or None for issues in found]


async def shadow_score(
    state: ServerState, shadow: ModelSlot, records: list[dict[str, Any]], given: list[Any]
) -> None:
    """Score ``records`` with the shadow version and count how its answers compare."""
    counter = state.metrics.shadow
    try:
        mirrored = await shadow.runner.submit(records)
    except Overloaded:
        counter.labels(outcome="dropped").inc(len(records))
        return
    except Exception:
        logger.warning("the shadow version failed on %d records", len(records), exc_info=True)
        counter.labels(outcome="failed").inc(len(records))
        return
    same = sum(a["prediction"] == b["prediction"] for a, b in zip(given, mirrored, strict=True))
    counter.labels(outcome="agree").inc(same)
    counter.labels(outcome="disagree").inc(len(records) - same)

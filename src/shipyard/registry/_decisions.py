"""Gate decisions kept with a model version: promoted or not, why, and the evidence.

A decision is an entry of the audit log (action ``gate``, the model's name, who ran the gate)
whose details name the version and the alias, so no table of its own is needed: a version may
be judged several times (for ``staging``, later for ``production``) and every judgement stays.
This module only reads and writes those entries; deciding is :mod:`shipyard.registry.gate`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.registry._audit import AuditEntry, AuditLog
from shipyard.store import Store

__all__ = ["GATE_ACTION", "GateRecord", "gate_records", "record_gate"]

GATE_ACTION = "gate"


@dataclass(frozen=True)
class GateRecord:
    """One recorded gate decision on a model version.

    Attributes:
        name: the model.
        version: the version judged (the challenger).
        alias: the alias it was judged for.
        promoted: whether it took the alias.
        reason: the decision in one sentence.
        evidence: what the decision rests on (the metric on both models, the paired
            bootstrap, the fairness measures); see :func:`shipyard.registry.gate.evaluate_gate`.
        decided_at: when, epoch seconds.
        decided_by: who ran the gate.
    """

    name: str
    version: int
    alias: str
    promoted: bool
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    decided_at: float = 0.0
    decided_by: str = ""


def record_gate(
    store: Store,
    name: str,
    version: int,
    *,
    alias: str,
    promoted: bool,
    reason: str,
    evidence: Mapping[str, Any],
    decided_by: str,
) -> GateRecord:
    """Keep a gate decision with the version (non-finite numbers are kept as ``None``).

    Raises:
        RegistryError: the evidence is not JSON.
        StoreError: the store failed.
    """
    details = {
        "version": version,
        "alias": alias,
        "promoted": promoted,
        "reason": reason,
        "evidence": _finite(dict(evidence)),
    }
    entry = AuditLog(store).record(GATE_ACTION, decided_by, details, model=name)
    return _record(entry)


def gate_records(store: Store, name: str, version: int | None = None) -> list[GateRecord]:
    """The gate decisions on ``name`` (one version's when given), newest first."""
    entries = AuditLog(store).entries(action=GATE_ACTION, model=name)
    records = [_record(e) for e in entries if e.model == name]
    return [r for r in records if version is None or r.version == version]


def _record(entry: AuditEntry) -> GateRecord:
    d = entry.details
    return GateRecord(
        name=entry.model or "",
        version=int(d.get("version", 0)),
        alias=str(d.get("alias", "")),
        promoted=bool(d.get("promoted", False)),
        reason=str(d.get("reason", "")),
        evidence=dict(d.get("evidence") or {}),
        decided_at=entry.created_at,
        decided_by=entry.actor,
    )


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None`` (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value

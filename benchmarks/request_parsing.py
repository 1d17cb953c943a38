"""Benchmark: parsing and validating one ``/predict`` body, pydantic-core vs orjson vs msgspec.

The server parses request bodies with the pydantic record model generated from the Signature
(``RecordParser``: JSON bytes to validated dicts in one pass, with errors that name the field).
This measures that against the two fast decoders the issue names, each doing the same job on
the penguins Signature: orjson (decode, then the same type, category, finiteness and missing
checks written in Python) and msgspec (decode into a Struct built from the Signature, then the
category and finiteness checks msgspec does not do). msgspec is measured only when installed
(``pip install msgspec``); nothing else here needs it.

Run: ``python benchmarks/request_parsing.py [--n 20000]``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from shipyard.data import ColumnSchema, Signature
from shipyard.serve._schema import RecordParser, build_record_model

SIG = Signature(
    inputs=(
        ColumnSchema(
            name="island",
            kind="category",
            dtype="str",
            nullable=True,
            categories=("Biscoe", "Dream", "Torgersen"),
        ),
        ColumnSchema(name="bill_length_mm", kind="number", dtype="float64", nullable=True),
        ColumnSchema(name="bill_depth_mm", kind="number", dtype="float64", nullable=True),
        ColumnSchema(name="flipper_length_mm", kind="number", dtype="float64", nullable=True),
        ColumnSchema(name="body_mass_g", kind="number", dtype="float64", nullable=True),
        ColumnSchema(
            name="sex", kind="category", dtype="str", nullable=True, categories=("female", "male")
        ),
    )
)
RECORD = {
    "island": "Biscoe",
    "bill_length_mm": 45.1,
    "bill_depth_mm": 14.5,
    "flipper_length_mm": 215,
    "body_mass_g": 5000,
    "sex": "female",
}


def _pydantic() -> Callable[[bytes], Any]:
    parser = RecordParser(build_record_model(SIG, name="Record"), max_records=10_000)
    return parser.parse


def _orjson() -> Callable[[bytes], Any]:
    import orjson

    columns = [(c.name, c.kind, frozenset(c.categories or ())) for c in SIG.inputs]

    def parse(body: bytes) -> Any:
        raw = orjson.loads(body)
        rows = raw if isinstance(raw, list) else [raw]
        out = []
        for row in rows:
            record = {}
            for name, kind, categories in columns:
                value = row[name]
                if value is not None:
                    if kind == "category":
                        if value not in categories:
                            raise ValueError(name)
                    elif not _finite_number(value):
                        raise ValueError(name)
                record[name] = value
            out.append(record)
        return out, isinstance(raw, list)

    return parse


def _finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _msgspec() -> Callable[[bytes], Any] | None:
    try:
        import msgspec
    except ImportError:
        return None
    fields = [
        (c.name, (str | None) if c.kind == "category" else (float | None)) for c in SIG.inputs
    ]
    record_type = msgspec.defstruct("Record", fields, forbid_unknown_fields=False)
    decoder = msgspec.json.Decoder(record_type | list[record_type])  # type: ignore[valid-type]
    categories = {c.name: frozenset(c.categories or ()) for c in SIG.inputs if c.categories}
    numbers = [c.name for c in SIG.inputs if c.kind == "number"]

    def parse(body: bytes) -> Any:
        raw = decoder.decode(body)
        rows = raw if isinstance(raw, list) else [raw]
        out = []
        for row in rows:
            record = msgspec.structs.asdict(row)
            for name, allowed in categories.items():
                if record[name] is not None and record[name] not in allowed:
                    raise ValueError(name)
            for name in numbers:
                if record[name] is not None and not math.isfinite(record[name]):
                    raise ValueError(name)
            out.append(record)
        return out, isinstance(raw, list)

    return parse


def _time(parse: Callable[[bytes], Any], body: bytes, n: int) -> float:
    for _ in range(200):
        parse(body)
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            parse(body)
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--n", type=int, default=20_000, help="parses per timing")
    n = args.parse_args().n
    one = json.dumps(RECORD).encode()
    hundred = json.dumps([RECORD] * 100).encode()
    parsers = {"pydantic-core (the server's)": _pydantic(), "orjson + checks": _orjson()}
    fast = _msgspec()
    if fast is not None:
        parsers["msgspec + checks"] = fast
    table = Table(title="Parse and validate a /predict body (µs, best of 5)")
    for col in ("parser", "1 record", "100 records", "vs pydantic (1 record)"):
        table.add_column(col)
    base = None
    for name, parse in parsers.items():
        t1, t100 = _time(parse, one, n), _time(parse, hundred, max(1, n // 50))
        base = base or t1
        table.add_row(name, f"{t1:.1f}", f"{t100:.0f}", f"{t1 / base:.2f}x")
    Console().print(table)
    if fast is None:
        Console().print("msgspec is not installed: pip install msgspec to compare it too")


if __name__ == "__main__":
    main()

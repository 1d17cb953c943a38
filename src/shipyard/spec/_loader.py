"""Load ``shipyard.yaml`` into a :class:`ProjectSpec` with line-accurate errors."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from shipyard.errors import SpecError
from shipyard.spec._models import ProjectSpec, _dotted

__all__ = ["load_spec", "parse_spec"]

_Path = tuple[str | int, ...]


def load_spec(path: str | Path, *, env: Mapping[str, str] | None = None) -> ProjectSpec:
    """Read and validate a project file.

    String values may name environment variables as ``${NAME}`` or ``${NAME:-default}``
    (``$$`` for a literal ``$``), so secrets such as database passwords stay out of the file.

    Args:
        path: the project file, usually ``shipyard.yaml``.
        env: the variables ``${NAME}`` reads; the process environment by default.

    Returns:
        The validated spec; ``spec.locate(...)`` maps fields back to lines.

    Raises:
        SpecError: the file is missing, is not YAML, or breaks the schema. The message names
            the file, the line, the field, what was found and what was expected.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "shipyard.yaml"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        msg = f"{p}: no such project file; create one with 'shipyard init'"
        raise SpecError(msg) from exc
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{p}: cannot read the project file ({exc})"
        raise SpecError(msg) from exc
    return parse_spec(text, source=p, env=os.environ if env is None else env)


def parse_spec(
    text: str, source: Path | None = None, *, env: Mapping[str, str] | None = None
) -> ProjectSpec:
    """Validate project-file YAML given as text (``source`` names it in errors).

    ``${NAME}`` references read ``env`` (none are set when it is ``None``).
    """
    where = str(source) if source is not None else "<spec>"
    data, lines = _compose(text, where, env or {})
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        msg = f"{where}:1: expected a mapping of settings (name:, data:, ...), found {found}"
        raise SpecError(msg)
    try:
        spec = ProjectSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(exc, where, lines, data)) from None
    spec._path = source.resolve() if source is not None else None
    spec._lines = lines
    return spec


def _compose(text: str, where: str, env: Mapping[str, str]) -> tuple[Any, dict[_Path, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else "?"
        msg = f"{where}:{line}: not valid YAML: {exc.problem or exc}"
        raise SpecError(msg) from None
    except yaml.YAMLError as exc:
        msg = f"{where}: not valid YAML: {exc}"
        raise SpecError(msg) from None
    lines: dict[_Path, int] = {}
    if node is None:
        return None, lines
    return _build(node, (), lines, where, env), lines


def _build(
    node: yaml.Node, path: _Path, lines: dict[_Path, int], where: str, env: Mapping[str, str]
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(" ").construct_object(key_node)  # scalar keys only
            if key in out:
                msg = f"{where}:{key_node.start_mark.line + 1}: key {key!r} appears twice"
                raise SpecError(msg)
            out[key] = _build(value_node, (*path, key), lines, where, env)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, (*path, i), lines, where, env) for i, v in enumerate(node.value)]
    value = yaml.SafeLoader(" ").construct_object(node)
    if isinstance(value, str) and "$" in value:
        return _expand(value, env, f"{where}:{lines[path]}: {_dotted(path)}")
    return value


_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(text: str, env: Mapping[str, str], where: str) -> str:
    """Replace ``${NAME}`` (or ``${NAME:-default}``) with the environment's value; ``$$`` is ``$``.

    This keeps secrets (database passwords) out of the project file.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        msg = (
            f"{where}: environment variable {name!r} is not set; set it, or give a default "
            f"as ${{{name}:-value}}"
        )
        raise SpecError(msg)

    return _VARIABLE.sub(replace, text)


def _format_errors(
    exc: ValidationError, where: str, lines: dict[_Path, int], data: dict[str, Any]
) -> str:
    parts = []
    for err in exc.errors():
        loc = _clean_loc(err["loc"])
        if err["type"] == "union_tag_invalid":  # point at the tag itself (type:, check:)
            loc = (*loc, str(err.get("ctx", {}).get("discriminator", "")).strip("'"))
        line = _line_for(loc, lines)
        field = _dotted(loc)
        parts.append(f"{where}:{line}: {field}: {_describe(err, loc, data)}")
    head = f"{where}: {len(parts)} problem(s) in the project file"
    return head + "\n  " + "\n  ".join(parts)


def _clean_loc(loc: tuple[Any, ...]) -> _Path:
    """Drop pydantic's union-tag segments (``csv``, ``range``) from a location."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and part.startswith(("function-", "tagged-union")):
            continue
        out.append(part)
    # tagged unions insert the tag after the list index / field: data.source.csv.path
    cleaned: list[str | int] = []
    for i, part in enumerate(out):
        prev = out[i - 1] if i else None
        after_tag_holder = prev in ("source", "expectations") or (
            isinstance(prev, int) and "expectations" in out
        )
        if after_tag_holder and isinstance(part, str) and part in _TAGS:
            continue
        cleaned.append(part)
    return tuple(cleaned)


_TAGS = {
    "csv",
    "parquet",
    "sql",
    "not_null",
    "range",
    "allowed_values",
    "unique",
    "row_count",
    "regex",
}


def _line_for(loc: _Path, lines: dict[_Path, int]) -> int:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


def _describe(err: Any, loc: _Path, data: dict[str, Any]) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        known = _known_fields(loc[:-1])
        hint = difflib.get_close_matches(name, known, n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"unknown field {name!r}{did} (expected one of: {', '.join(sorted(known))})"
    if kind == "missing":
        return "required field is missing"
    found = err.get("input")
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        return msg
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        tag = ctx.get("discriminator", "tag")
        return f"{tag} is {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        ctx = err.get("ctx", {})
        return f"missing {ctx.get('discriminator', 'a tag')}; {msg.lower()}"
    if kind in ("literal_error", "enum"):
        return f"found {found!r}; {msg.lower()}"
    return f"found {found!r}; expected: {msg.lower()}"


def _known_fields(path: _Path) -> list[str]:
    """The field names allowed at ``path`` (best effort; for 'did you mean' hints)."""
    model: Any = ProjectSpec
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = _model_of(field.annotation)
        if model is None:
            return []
    return list(model.model_fields) if hasattr(model, "model_fields") else []


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None

"""Contracts between code and docs: the public API, the project-file reference, the README."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

import shipyard
from shipyard import spec as spec_module

ROOT = Path(__file__).resolve().parents[2]


def test_public_api_matches_the_docs() -> None:
    documented = set(
        re.findall(r"^\| `shipyard\.(\w+)", (ROOT / "docs" / "python-api.md").read_text(), re.M)
    )
    assert documented == set(shipyard.__all__)
    missing = [name for name in shipyard.__all__ if not hasattr(shipyard, name)]
    assert not missing, f"shipyard.__all__ names what the package does not define: {missing}"
    undocumented = [
        name
        for name in shipyard.__all__
        if callable(getattr(shipyard, name)) and not (getattr(shipyard, name).__doc__ or "").strip()
    ]
    assert not undocumented, f"public names without a docstring: {undocumented}"


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _fields(model: type[BaseModel], prefix: str) -> set[str]:
    out = set()
    for name, field in model.model_fields.items():
        out.add(f"{prefix}{name}")
        for sub in _models(field.annotation):
            nested = (
                ""
                if sub.__name__ in _TAGGED
                else f"{prefix}{name}{'[].' if _is_list(field.annotation) else '.'}"
            )
            out |= _fields(sub, nested) if nested else set(sub.model_fields)
    return out


_TAGGED = {c.__name__ for c in _models(spec_module.SourceSpec)} | {
    c.__name__ for c in _models(spec_module.Expectation)
}


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def test_every_project_file_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "project-file.md").read_text()
    missing = sorted(f for f in _fields(spec_module.ProjectSpec, "") if f"`{f}`" not in doc)
    assert not missing, f"document these settings in docs/project-file.md: {missing}"


def test_every_catalogue_model_is_documented() -> None:
    from shipyard.train import default_catalogue

    doc = (ROOT / "docs" / "project-file.md").read_text()
    keys = default_catalogue().keys()
    assert [k for k in keys if f"`{k}`" not in doc] == []


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line.strip() for line in readme[:12] if line.startswith("    python3 -m venv")]
    assert len(commands) == 2, "the README's first lines give the main-job and the test command"
    assert "shipyard quickstart" in commands[0]
    assert f"bash -c '{commands[1]}'" in (ROOT / ".ci" / "run").read_text()


def test_every_cli_command_is_documented() -> None:
    import typer.main

    from shipyard.cli import build_app

    doc = (ROOT / "docs" / "cli.md").read_text()
    group = typer.main.get_command(build_app())
    names = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        names += [f"shipyard {name} {sub}" for sub in subs] if subs else [f"shipyard {name}"]
    missing = [n for n in names if f"`{n}" not in doc]
    assert not missing, f"document these commands in docs/cli.md: {missing}"

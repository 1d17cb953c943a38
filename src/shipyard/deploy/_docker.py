"""The Dockerfile: slim, non-root, pinned, the model fetched by URI at start."""

from __future__ import annotations

import json

import jinja2

from shipyard.deploy._spec import DeploySpec

__all__ = ["UID", "dockerfile", "dockerignore"]

UID = 10001
"""The image's non-root user and group id (the Kubernetes securityContext runs as it)."""


def dockerfile(spec: DeploySpec) -> str:
    """The Dockerfile's text."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shipyard.deploy", "templates"),
        autoescape=False,  # a Dockerfile, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("Dockerfile.j2")
    return template.render(spec=spec, uid=UID, serve_args=json.dumps(spec.serve_args))


def dockerignore() -> str:
    """Keep the build context to the Dockerfile (and a wheel): never a store or a secret."""
    return "\n".join(["*", "!Dockerfile", "!*.whl", ""])

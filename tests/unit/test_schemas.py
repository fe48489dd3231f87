"""The committed JSON Schemas match the pydantic models they are generated from."""

from __future__ import annotations

import json

from barecount.cli.main import schema_models
from barecount.config.project import ProjectPaths


def test_committed_schemas_are_current(repo_paths: ProjectPaths) -> None:
    for name, model in schema_models().items():
        committed = json.loads((repo_paths.root / "schemas" / f"{name}.schema.json").read_text())
        assert committed == model.model_json_schema(), f"schemas/{name}.schema.json is stale: run `make schema`"

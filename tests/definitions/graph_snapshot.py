"""The asset graph as the UI shows it, as plain data: a snapshot test makes any change to it visible in review."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg

SNAPSHOT = Path(__file__).parent.parent / "fixtures" / "asset_graph.json"


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> dict[str, Any] | None:
    if partitions_def is None:
        return None
    keys = partitions_def.get_partition_keys()
    return {"kind": type(partitions_def).__name__, "keys": len(keys), "first": keys[0], "last": keys[-1]}


def _metadata_value(value: object) -> str:
    if isinstance(value, dg.CodeReferencesMetadataValue):
        return json.dumps([[Path(r.file_path).name, getattr(r, "line_number", None)] for r in value.code_references])
    if isinstance(value, dg.MetadataValue):
        return f"<{type(value).__name__}>"
    return str(value)


def graph_snapshot(defs: dg.Definitions) -> dict[str, Any]:
    """Asset keys with their groups, owners, kinds, tags, descriptions, code versions, partitions, deps and
    metadata; checks; jobs; sensors and schedules."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
        node = graph.get(spec.key)
        assets[spec.key.to_user_string()] = {
            "group": spec.group_name,
            "owners": sorted(spec.owners),
            "kinds": sorted(spec.kinds),
            "tags": {k: v for k, v in sorted(spec.tags.items()) if not k.startswith("dagster/kind/")},
            "description": spec.description,
            "code_version": spec.code_version,
            "partitions": _partitions(spec.partitions_def),
            "backfill_policy": str(node.backfill_policy) if node.backfill_policy else None,
            "deps": {
                d.asset_key.to_user_string(): type(d.partition_mapping).__name__ if d.partition_mapping else None
                for d in sorted(spec.deps, key=lambda d: d.asset_key.to_user_string())
            },
            "metadata": {k: _metadata_value(v) for k, v in sorted(spec.metadata.items())},
        }
    checks = {}
    for key in sorted(graph.asset_check_keys, key=lambda k: k.to_user_string()):
        check = graph.get_check_spec(key)
        checks[key.to_user_string()] = {
            "blocking": check.blocking,
            "description": check.description,
            "partitioned": graph.get(key.asset_key).partitions_def is not None,
        }
    repo = defs.get_repository_def()
    return {
        "assets": assets,
        "checks": checks,
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "schedules": sorted(s.name for s in repo.schedule_defs),
    }


def snapshot_text(defs: dg.Definitions) -> str:
    return json.dumps(graph_snapshot(defs), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m tests.definitions.graph_snapshot: accept the graph as it is now
    from barecount.config.profiles import load_settings
    from barecount.config.project import ProjectPaths
    from barecount.defs.assembly import build_definitions

    SNAPSHOT.write_text(snapshot_text(build_definitions(load_settings(ProjectPaths.discover(), "local"))))

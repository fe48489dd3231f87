"""The asset graph the UI shows, as a snapshot: a change to any key, dep, partition, check, job or sensor shows
in review as a change to tests/fixtures/asset_graph.json."""

from __future__ import annotations

import difflib

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import build_definitions
from tests.definitions.graph_snapshot import SNAPSHOT, snapshot_text


def test_the_asset_graph_is_as_snapshotted(repo_paths: ProjectPaths) -> None:
    now = snapshot_text(build_definitions(load_settings(repo_paths, "local")))
    kept = SNAPSHOT.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(kept.splitlines(True), now.splitlines(True), "snapshot", "now", n=2))
    assert not diff, (
        "the asset graph changed; if that is meant, run `python -m tests.definitions.graph_snapshot` and "
        f"commit tests/fixtures/asset_graph.json:\n{diff}"
    )

"""A real Dagster webserver on a project, for tests that read what the UI shows (GraphQL) or drive it (chromium)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from barecount.config.processes import free_port, stop_process_group

T = TypeVar("T")

ORG = "acme"
"""The organisation the UI tests work in: its code location is named after it, and its asset keys lead with it."""
LOCATION = {"repositoryLocationName": ORG, "repositoryName": "__repository__"}
DONE = {"SUCCESS", "FAILURE", "CANCELED"}
RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) { ... on Runs { results { runId status tags { key value } } } }
}
"""
PARTITION_STATUSES = """
query Statuses($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } }
    }
  }
}
"""


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 240.0) -> T:
    """`probe()` once a second until it returns something truthy; a TimeoutError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1.0)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}")


@dataclass(frozen=True)
class DagsterServer:
    url: str
    home: Path
    warehouse: Path | None = None
    """The warehouse its runs write, when the caller chose one."""

    def graphql(self, query: str, variables: dict[str, object] | None = None) -> dict[str, object]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["data"]  # type: ignore[no-any-return]

    def runs(self, tags: dict[str, str] | None = None, run_ids: list[str] | None = None) -> list[dict[str, object]]:
        """Runs with all of `tags` (or the given ids), newest first: runId, status, tags."""
        filter_: dict[str, object] = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        if run_ids is not None:
            filter_ = {"runIds": run_ids}
        return self.graphql(RUNS, {"filter": filter_})["runsOrError"]["results"]  # type: ignore[index,no-any-return]

    def finished(self, run_id: str, timeout: float = 240.0) -> str:
        """Wait for a run to end; its status (SUCCESS, FAILURE or CANCELED)."""

        def status() -> str | None:
            (run,) = self.runs(run_ids=[run_id])
            return str(run["status"]) if run["status"] in DONE else None

        return wait_until(f"run {run_id}", status, timeout)

    def partition_statuses(self, asset: str) -> tuple[set[str], set[str]]:
        """(materialized, failed) partitions of an asset (`raw/orders`: ORG's), as the UI colours them."""
        node = self.graphql(PARTITION_STATUSES, {"key": {"path": [ORG, *asset.split("/")]}})["assetNodeOrError"]
        statuses = node["assetPartitionStatuses"]  # type: ignore[index]
        return set(statuses["materializedPartitions"]), set(statuses["failedPartitions"])  # type: ignore[index]


@contextmanager
def serve_dagster(
    root: Path, home: Path, env: dict[str, str], daemon: bool = True, warehouse: Path | None = None
) -> Iterator[DagsterServer]:
    """`dagster dev` (webserver and daemon), or the webserver alone, on `root`'s workspace with DAGSTER_HOME
    `home`, in its own process group; stopped when the block ends."""
    port = free_port()
    log = (home / "dagster-server.log").open("w")
    command = (
        [str(Path(sys.executable).with_name("dagster")), "dev"]
        if daemon
        else [str(Path(sys.executable).with_name("dagster-webserver"))]
    )
    process = subprocess.Popen(
        [*command, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=root,
        env={**os.environ, **env, "DAGSTER_HOME": str(home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = DagsterServer(f"http://127.0.0.1:{port}", home, warehouse)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"dagster exited: {(home / 'dagster-server.log').read_text()[-3000:]}")
            try:
                data = server.graphql("{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }")
                entries = data["workspaceOrError"]["locationEntries"]  # type: ignore[index]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("dagster did not load the workspace within 120 s")
            time.sleep(0.5)
        yield server
    finally:
        stop_process_group(process, grace_seconds=30)
        log.close()

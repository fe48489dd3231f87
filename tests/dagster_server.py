"""A real Dagster webserver on a project, for tests that read what the UI shows (GraphQL) or drive it (chromium)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_dagster(
    root: Path, home: Path, env: dict[str, str], daemon: bool = True, warehouse: Path | None = None
) -> Iterator[DagsterServer]:
    """`dagster dev` (webserver and daemon), or the webserver alone, on `root`'s workspace with DAGSTER_HOME
    `home`, in its own process group; stopped when the block ends."""
    port = _free_port()
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
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()

"""A real `dagster dev` (webserver + daemon) on the project's workspace, and a real chromium."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from barecount.project import ProjectPaths

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path("test-artifacts") / "ui"


@dataclass(frozen=True)
class DagsterServer:
    url: str
    home: Path
    warehouse: Path

    def graphql(self, query: str, variables: dict[str, object] | None = None) -> dict[str, object]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["data"]  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def dagster_server(tmp_path_factory: pytest.TempPathFactory, repo_paths: ProjectPaths) -> Iterator[DagsterServer]:
    """`dagster dev` in its own process group with a temporary DAGSTER_HOME and warehouse; stopped at the end."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copyfile(repo_paths.resources / "dagster.yaml", home / "dagster.yaml")
    warehouse = home / "warehouse.duckdb"
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "BARECOUNT_WAREHOUSE": str(warehouse)}
    log = (home / "dagster-dev.log").open("w")
    dagster = Path(sys.executable).with_name("dagster")
    process = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=repo_paths.root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = DagsterServer(f"http://127.0.0.1:{port}", home, warehouse)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"dagster dev exited: {(home / 'dagster-dev.log').read_text()[-3000:]}")
            try:
                data = server.graphql("{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }")
                entries = data["workspaceOrError"]["locationEntries"]  # type: ignore[index]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("dagster dev did not load the workspace within 120 s")
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


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page; a screenshot of it is saved if the test fails."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    new_page = context.new_page()
    new_page.set_default_timeout(30_000)
    yield new_page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}-failure.png"
        new_page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot.resolve()}")
    context.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)

"""A real `dagster dev` (webserver + daemon) on the project's workspace, and a real chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from barecount.project import WAREHOUSE_ENV, ProjectPaths
from tests.dagster_server import DagsterServer, serve_dagster

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


@pytest.fixture(scope="session")
def dagster_server(tmp_path_factory: pytest.TempPathFactory, repo_paths: ProjectPaths) -> Iterator[DagsterServer]:
    """`dagster dev` with a temporary DAGSTER_HOME and warehouse, for the whole session."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copyfile(repo_paths.resources / "dagster.yaml", home / "dagster.yaml")
    warehouse = home / "warehouse.duckdb"
    with serve_dagster(repo_paths.root, home, {WAREHOUSE_ENV: str(warehouse)}, warehouse=warehouse) as server:
        yield server


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

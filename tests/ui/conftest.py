"""A real `dagster dev` (webserver + daemon) on the project's workspace, and a real chromium.

The server runs on a copy of the project with sample data of its own (the drift flow changes an extract
and drafts a contract version), a temporary DAGSTER_HOME holding the project's dagster.yaml, and a
temporary warehouse. Screenshots go under test-artifacts/ui/; each test prints where.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from barecount.calendar import FiscalCalendar
from barecount.config.profiles import load_settings
from barecount.config.project import DAGSTER_HOME_ENV, PROJECT_ROOT_ENV, WAREHOUSE_ENV, ProjectPaths
from barecount.devtools.sample_data import generate_sample_data
from tests.cli import BARECOUNT
from tests.conftest import TEST_SCALE, UI_ARTIFACTS, copy_project
from tests.dagster_server import ORG, DagsterServer, serve_dagster

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


@dataclass(frozen=True)
class ServedProject:
    """The project `dagster dev` serves: its files, the sources it reads, and the newest sample period."""

    paths: ProjectPaths
    sources: Path
    calendar: FiscalCalendar
    newest: str

    @property
    def periods(self) -> list[str]:
        """The periods the sample's extracts cover: the partitions (the active periods), in calendar order."""
        return sorted(extract.stem for extract in (self.sources / "erp" / "orders").glob("*.parquet"))


@pytest.fixture(scope="session")
def served_project(tmp_path_factory: pytest.TempPathFactory) -> ServedProject:
    base = tmp_path_factory.mktemp("ui_project")
    sources = base / "sources"
    paths = copy_project(base / "project", sources)
    calendar = load_settings(paths).calendar
    newest = generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar).last_period
    return ServedProject(paths, sources, calendar, newest)


@pytest.fixture(scope="session")
def dagster_server(tmp_path_factory: pytest.TempPathFactory, served_project: ServedProject) -> Iterator[DagsterServer]:
    """`dagster dev` with a temporary DAGSTER_HOME and warehouse, for the whole session, after a complete demo:
    `barecount run` over every sample period, as `make demo` leaves a project."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copyfile(served_project.paths.resources / "dagster.yaml", home / "dagster.yaml")
    # a file per organisation, as the profile has it: the UI serves every organisation's code location
    env = {WAREHOUSE_ENV: str(home / "{org}.duckdb"), PROJECT_ROOT_ENV: str(served_project.paths.root)}
    warehouse = home / f"{ORG}.duckdb"
    demo = subprocess.run(
        [BARECOUNT, "run"],
        env={**os.environ, **env, DAGSTER_HOME_ENV: str(home)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    with serve_dagster(served_project.paths.root, home, env, warehouse=warehouse) as server:
        print(f"dagster dev for the UI tests: {server.url}, DAGSTER_HOME {home}")
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
        screenshot(new_page, f"{request.node.name}-failure", full_page=True)
    context.close()


def screenshot(page: Page, name: str, full_page: bool = False) -> Path:
    """Save what the page shows as test-artifacts/ui/<name>.png, and say where."""
    UI_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = (UI_ARTIFACTS / f"{name}.png").resolve()
    page.screenshot(path=str(shot), full_page=full_page)
    print(f"screenshot: {shot}")
    return shot


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)

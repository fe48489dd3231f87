"""Shared fixtures: the real project files, sample data made once per session, temporary warehouses."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from barecount.config.profiles import Settings, load_settings
from barecount.config.project import DAGSTER_HOME_ENV, PROJECT_ROOT_ENV, WAREHOUSE_ENV, ProjectPaths
from barecount.devtools.sample_data import generate_sample_data
from barecount.sql.pii import PII_KEY_ENV
from tests.cli import barecount

REPO = ProjectPaths.discover(Path(__file__).parent)
UI_ARTIFACTS = Path("test-artifacts") / "ui"
"""Screenshots of the UI tests; this session's only."""
TEST_SCALE = float(os.environ.get("BARECOUNT_TEST_SCALE", "0.01"))
"""TPC-H scale of the session's sample data; set BARECOUNT_TEST_SCALE=1 to run a test at scale 1."""
os.environ.setdefault(PII_KEY_ENV, "test-key")  # GDP masking needs a key; subprocesses inherit it
# Started in the background, the suite ignores SIGINT, and an in-process Dagster run on the main thread
# (dg.materialize) copies SIGINT's handling onto SIGTERM, which every server and CLI the tests start would
# then inherit: `dagster dev` would not stop on SIGTERM. Interrupts are handled as in a terminal instead.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionstart(session: pytest.Session) -> None:
    # once per session, before any worker starts: `make test` runs the suite on pytest-xdist workers
    if not hasattr(session.config, "workerinput"):
        shutil.rmtree(UI_ARTIFACTS, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked `long` (a minute or more) first, in file order otherwise: pytest-xdist hands out files
    in this order (`--no-loadscope-reorder`), so no worker starts a long file while the others finish."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session")
def repo_paths() -> ProjectPaths:
    return REPO


@pytest.fixture(scope="session")
def sample_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TPC-H SF 0.01 laid out as the ERP delivers it; made once, read by many tests."""
    out = tmp_path_factory.mktemp("sources")
    settings = load_settings(REPO)
    generate_sample_data(out, TEST_SCALE, seed=0, calendar=settings.calendar)
    return out


def settings_for(paths: ProjectPaths, sources: Path) -> Settings:
    """The local profile of `paths`, reading `sources` (warehouse from BARECOUNT_WAREHOUSE)."""
    settings = load_settings(paths, "local")
    profile = settings.profile.model_copy(update={"sources_dir": str(sources)})
    return dataclasses.replace(settings, profile=profile)


@pytest.fixture
def warehouse_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(WAREHOUSE_ENV, str(path))
    return path


@pytest.fixture
def settings(sample_sources: Path, warehouse_file: Path) -> Settings:
    return settings_for(REPO, sample_sources)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A persistent instance in a temporary DAGSTER_HOME, configured by the project's dagster.yaml (storage too)."""
    config = yaml.safe_load((REPO.resources / "dagster.yaml").read_text(encoding="utf-8"))
    with dg.instance_for_test(overrides=config) as test_instance:
        yield test_instance


def copy_project(root: Path, sources: Path | None = None) -> ProjectPaths:
    """A copy of the project's declarative files in `root`, its local profile reading `sources` if given."""
    return REPO.copy_to(root, sources)


def use_project(paths: ProjectPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the `barecount` command at `paths`, with its own DAGSTER_HOME and warehouse."""
    monkeypatch.setenv(PROJECT_ROOT_ENV, str(paths.root))
    monkeypatch.delenv(DAGSTER_HOME_ENV, raising=False)
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectPaths:
    """A copy of the project's declarative files to break on purpose; BARECOUNT_PROJECT_ROOT points at it."""
    paths = copy_project(tmp_path / "project")
    monkeypatch.setenv(PROJECT_ROOT_ENV, str(paths.root))
    return paths


@pytest.fixture
def own_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ProjectPaths, Path]:
    """A project copy whose local profile reads a sources folder of its own, for the test to fill: (paths, folder)."""
    sources = tmp_path / "sources"
    paths = copy_project(tmp_path / "project", sources)
    use_project(paths, monkeypatch)
    return paths, sources


@pytest.fixture
def project(tmp_path: Path, sample_sources: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectPaths:
    """A project copy whose local profile reads the session's sample data and writes its own warehouse."""
    paths = copy_project(tmp_path / "project", sample_sources)
    use_project(paths, monkeypatch)
    return paths


BUILT_PERIODS = ("FY1995-P01", "FY1995-P04")
"""The periods of the session's built project: four, so a test sees unchanged, rebuilt and late-data periods."""


@pytest.fixture(scope="session")
def built_once(tmp_path_factory: pytest.TempPathFactory, sample_sources: Path) -> ProjectPaths:
    """A project that ran `barecount run` over BUILT_PERIODS of the session's sample data, once per session:
    warehouse, evidence and DAGSTER_HOME as a user's first run leaves them. Tests copy it (`built_project`)."""
    paths = copy_project(tmp_path_factory.mktemp("built") / "project", sample_sources)
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_project(paths, monkeypatch)
        ran = barecount("run", "--from", BUILT_PERIODS[0], "--to", BUILT_PERIODS[1])
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return paths


@pytest.fixture
def built_project(built_once: ProjectPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectPaths:
    """This test's own copy of the session's built project; the `barecount` command points at it."""
    shutil.copytree(built_once.root, tmp_path / "project")
    paths = ProjectPaths(tmp_path / "project")
    use_project(paths, monkeypatch)
    return paths

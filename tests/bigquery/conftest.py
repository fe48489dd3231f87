"""A BigQuery emulator per test session (per xdist worker that runs these tests), started and stopped here."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from barecount.config.profiles import load_settings
from barecount.config.project import PROFILE_ENV, ProjectPaths
from barecount.defs.bigquery_resource import BigQueryWarehouse
from barecount.warehouse.bigquery import BigQueryConnection, bigquery_connection
from barecount.warehouse.bigquery_emulator import (
    EMULATOR_PYTHON_ENV,
    BigQueryEmulator,
    emulator_python,
    holding_emulator,
)
from tests.conftest import REPO, copy_project, use_project

PII_KEY = "a-key-that-must-stay-secret"
PROFILE = "bigquery-emulator"


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    log = tmp_path_factory.mktemp("bqemulator") / "emulator.log"
    with BigQueryEmulator(emulator_python(REPO.root), log) as emulator:
        yield emulator


@pytest.fixture
def conn(bigquery_emulator: BigQueryEmulator) -> Iterator[BigQueryConnection]:
    """A BigQuery session on datasets of its own (a fresh prefix per test)."""
    resource = BigQueryWarehouse(project=bigquery_emulator.project, api_endpoint=bigquery_emulator.endpoint)
    with resource.get_client() as client, bigquery_connection(client, f"t{uuid.uuid4().hex[:8]}") as conn:
        yield conn


@pytest.fixture
def emulated_project(tmp_path: Path, sample_sources: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProjectPaths]:
    """A project copy on the emulator profile, reading its own copy of the session's sample data, with its emulator
    held for the test (its tables are kept in the project's data folder)."""
    sources = tmp_path / "sources"
    shutil.copytree(sample_sources, sources)
    paths = copy_project(tmp_path / "project", sources)
    use_project(paths, monkeypatch)
    monkeypatch.setenv(PROFILE_ENV, PROFILE)
    monkeypatch.setenv(EMULATOR_PYTHON_ENV, str(emulator_python(REPO.root)))
    monkeypatch.setenv("BARECOUNT_PII_KEY", PII_KEY)
    settings = load_settings(paths)
    with holding_emulator(emulator_python(REPO.root), settings.emulator_dir, settings.bigquery.project):
        yield paths

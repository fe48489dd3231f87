"""A BigQuery emulator per test session (per xdist worker that runs these tests), started and stopped here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from barecount.defs.bigquery_resource import BigQueryWarehouse
from barecount.warehouse.bigquery import BigQueryConnection, bigquery_connection
from barecount.warehouse.bigquery_emulator import BigQueryEmulator, emulator_python
from tests.conftest import REPO


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

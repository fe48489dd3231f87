"""A BigQuery emulator per test session (per xdist worker that runs these tests), started and stopped here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from barecount.warehouse.bigquery_emulator import BigQueryEmulator, emulator_python
from tests.conftest import REPO


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    log = tmp_path_factory.mktemp("bqemulator") / "emulator.log"
    with BigQueryEmulator(emulator_python(REPO.root), log) as emulator:
        yield emulator

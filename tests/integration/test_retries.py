"""Connector steps retry transient errors with backoff and jitter, each attempt on the record; permanent ones fail
at once."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from barecount.config.profiles import Settings
from barecount.defs.assembly import build_definitions
from barecount.defs.runner import run_partitions
from barecount.evidence import ledger
from barecount.pipeline.periods import source_periods
from tests.conftest import REPO, settings_for

SELECTION = ["raw/region", "raw/nation", "raw/customer", "raw/orders"]


def _retries(instance: dg.DagsterInstance) -> int:
    return sum(
        len(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)) for run in instance.get_runs()
    )


def _entries(warehouse: Path, kind: str) -> list[ledger.LedgerEntry]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return ledger.read_entries(conn, "raw/orders", kind=kind)


@pytest.fixture
def own_sources(sample_sources: Path, tmp_path: Path, warehouse_file: Path) -> tuple[Settings, str]:
    """Settings reading a copy of the sample sources (to break on purpose), and a period to run."""
    sources = tmp_path / "sources"
    shutil.copytree(sample_sources, sources)
    settings = settings_for(REPO, sources)
    return settings, source_periods(settings)[10]


def test_an_extract_still_being_delivered_is_retried_until_it_lands(
    own_sources: tuple[Settings, str], warehouse_file: Path, instance: dg.DagsterInstance
) -> None:
    settings, period = own_sources
    extract = settings.sources_dir / "erp" / "orders" / f"{period}.parquet"
    delivered = extract.read_bytes()
    extract.write_bytes(delivered[: len(delivered) // 2])  # the first half has arrived, the footer has not

    def finish_delivery() -> None:  # the rest arrives while the step waits before its third attempt
        while _retries(instance) < 2:
            threading.Event().wait(0.05)
        extract.write_bytes(delivered)

    deliverer = threading.Thread(target=finish_delivery, daemon=True)
    deliverer.start()
    outcome = run_partitions(build_definitions(settings), instance, [period], selection=SELECTION)
    deliverer.join(timeout=30)
    assert outcome.success, outcome.failure
    assert _retries(instance) == 2
    attempts = _entries(warehouse_file, "attempt")
    assert [(a.facts["attempt"], a.facts["transient"], a.facts["retrying"]) for a in attempts] == [
        (1, True, True),
        (2, True, True),
    ]
    assert all("not completely delivered yet" in a.facts["error"] and a.run_id == outcome.run_id for a in attempts)
    (landed,) = _entries(warehouse_file, "materialization")
    assert landed.partition == period and landed.facts["attempt"] == 3 and landed.facts["rows_landed"] > 0


def test_a_bad_file_fails_at_once_and_keeps_the_previous_rows(
    own_sources: tuple[Settings, str], warehouse_file: Path, instance: dg.DagsterInstance
) -> None:
    settings, period = own_sources
    defs = build_definitions(settings)
    assert run_partitions(defs, instance, [period], selection=SELECTION).success
    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        before = conn.execute(f"SELECT * FROM raw.orders WHERE fiscal_period = '{period}' ORDER BY ALL").fetchall()

    (settings.sources_dir / "erp" / "orders" / f"{period}.parquet").write_text("o_orderkey,o_custkey\n1,2\n")
    failed = run_partitions(defs, instance, [period], selection=SELECTION, tags={"case": "bad"})
    assert not failed.success and failed.assets["raw/orders"].status == "failed"
    assert failed.failure is not None and "raw/orders" in failed.failure and "parquet" in failed.failure.lower()
    assert _retries(instance) == 0
    (attempt,) = _entries(warehouse_file, "attempt")
    assert (attempt.facts["attempt"], attempt.facts["transient"], attempt.facts["retrying"]) == (1, False, False)
    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        assert conn.execute(f"SELECT * FROM raw.orders WHERE fiscal_period = '{period}' ORDER BY ALL").fetchall() == (
            before
        )

"""Injected bad rows end up in quarantine with the right rule, and nothing else does."""

from __future__ import annotations

import collections
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from barecount.catalog.loader import load_project_specs
from barecount.config.profiles import Settings, load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import build_definitions
from barecount.defs.runner import run_partitions
from barecount.devtools.sample_data import SampleManifest, generate_sample_data
from barecount.pipeline.periods import source_periods
from tests.conftest import settings_for

BAD_ROWS = 70  # ten of each kind


@pytest.fixture(scope="module")
def bad_sources(tmp_path_factory: pytest.TempPathFactory, repo_paths: ProjectPaths) -> tuple[Path, SampleManifest]:
    out = tmp_path_factory.mktemp("bad_sources")
    manifest = generate_sample_data(out, 0.01, 3, load_settings(repo_paths).calendar, bad_rows=BAD_ROWS)
    return out, manifest


def test_every_injected_row_is_quarantined_with_its_rule_and_nothing_else_is(
    bad_sources: tuple[Path, SampleManifest],
    repo_paths: ProjectPaths,
    warehouse_file: Path,
    instance: dg.DagsterInstance,
) -> None:
    sources, manifest = bad_sources
    settings: Settings = settings_for(repo_paths, sources)
    raw = [s.asset_ref for s in load_project_specs(settings.paths).streams]  # quarantine happens at the door
    outcome = run_partitions(build_definitions(settings), instance, source_periods(settings), selection=raw)
    assert outcome.success, outcome.failure
    assert len(manifest.injected) == BAD_ROWS
    expected = collections.Counter((i.stream, i.rule, i.key) for i in manifest.injected)
    keys = {"orders": "o_orderkey", "lineitem": "l_orderkey || ', ' || l_linenumber", "crm_customers": "customer_id"}
    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        found: collections.Counter[tuple[str, str, str | None]] = collections.Counter()
        orphans = 0
        for stream, key in keys.items():
            for rule, value in conn.execute(f"SELECT quarantine_rule, {key} FROM quarantine.{stream}").fetchall():
                if rule == "orphan_of_quarantined_parent":
                    orphans += 1
                else:
                    found[(stream, rule, value)] += 1
        assert found == expected
        bad_orders = [i.key for i in manifest.injected if i.rule == "valid_values__o_orderstatus"]
        lines_of_bad_orders = conn.execute(
            f"SELECT count(*) FROM read_parquet('{sources}/erp/lineitem/*.parquet') "
            f"WHERE l_orderkey IN ({', '.join(str(k) for k in bad_orders)})"
        ).fetchone()
        assert lines_of_bad_orders is not None and orphans == lines_of_bad_orders[0] > 0
        for table in ("customer", "nation", "region", "part", "supplier", "partsupp"):
            assert conn.execute(f"SELECT count(*) FROM quarantine.{table}").fetchone() == (0,), table
        accounting = conn.execute(
            "SELECT count(*) FILTER (WHERE (facts->>'rows_in')::INT != (facts->>'rows_landed')::INT "
            "+ (facts->>'rows_quarantined')::INT), count(*) FROM evidence.ledger WHERE asset LIKE 'raw/%'"
        ).fetchone()
        assert accounting is not None and accounting[0] == 0 and accounting[1] > 2 * 81
        lines_in = manifest.totals["lineitem"]
        landed = conn.execute("SELECT count(*) FROM raw.lineitem").fetchone()
        held = conn.execute("SELECT count(*) FROM quarantine.lineitem").fetchone()
        assert landed is not None and held is not None and landed[0] + held[0] == lines_in

"""The pipeline on the emulator profile: `barecount run --profile bigquery-emulator` over the session's sample data
(TPC-H SF 0.01, the periods the local profile's session build ran) publishes the same numbers as the local profile,
and a period written again is replaced, not added twice. Tables are partitioned by period and clustered."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from barecount.config.instance import open_instance
from barecount.config.project import ProjectPaths
from barecount.warehouse.bigquery import bigquery_client, bigquery_connection
from barecount.warehouse.bigquery_emulator import EMULATOR_PYTHON_ENV, BigQueryEmulator, emulator_python
from tests.cli import barecount
from tests.conftest import BUILT_PERIODS, REPO, copy_project, use_project
from tests.published_values import differences, published_values

pytestmark = pytest.mark.long

PII_KEY = "a-key-that-must-stay-secret"

EMULATOR = ("--profile", "bigquery-emulator")


def _number(value: object) -> object:
    """Numbers as numbers: DuckDB gives DECIMAL(18,2) 1.50 where BigQuery's NUMERIC gives 1.5."""
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    return value


def _same(local: object, emulated: object) -> bool:
    """Equal; doubles (averages summed in no fixed order) to 1e-12. The emulator does not round a CAST to
    NUMERIC(p, s) to its scale (real BigQuery does), so an emulated decimal with more digits than the local one
    agrees with it to within one unit of the local value's last digit."""
    a, b = _number(local), _number(emulated)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (float, Decimal)) and isinstance(b, (float, Decimal)) and math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, Decimal) and isinstance(b, Decimal) and b.as_tuple().exponent < a.as_tuple().exponent:  # type: ignore[operator]
        return abs(a - b) <= Decimal(1).scaleb(a.as_tuple().exponent)  # type: ignore[arg-type]
    return a == b


@pytest.fixture
def emulated_project(tmp_path: Path, sample_sources: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectPaths:
    """A project copy whose profiles read the session's sample data; its emulator keeps tables in its data folder."""
    paths = copy_project(tmp_path / "project", sample_sources)
    use_project(paths, monkeypatch)
    monkeypatch.setenv(EMULATOR_PYTHON_ENV, str(emulator_python(REPO.root)))
    monkeypatch.setenv("BARECOUNT_PII_KEY", PII_KEY)
    return paths


def test_a_run_on_the_emulator_publishes_what_the_local_profile_publishes_and_a_rerun_writes_nothing_twice(
    emulated_project: ProjectPaths, built_once: ProjectPaths, tmp_path: Path
) -> None:
    periods = ("--from", BUILT_PERIODS[0], "--to", BUILT_PERIODS[1])
    ran = barecount("run", *EMULATOR, *periods)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with open_instance(emulated_project) as instance:
        (run,) = instance.get_runs(limit=1)
        logged = " ".join(str(entry) for entry in instance.all_logs(run.run_id))
        event = instance.get_latest_materialization_event(dg.AssetKey(["kpi", "net_revenue"]))
    assert event is not None and event.asset_materialization is not None
    costs = event.asset_materialization.metadata
    assert costs["bigquery_queries"].value > 0 and "bigquery_bytes_billed" in costs, "what BigQuery's jobs cost"
    assert PII_KEY not in logged + ran.stdout + ran.stderr, "the key is bound as a parameter, never written"

    local = published_values(built_once.root / "data" / "warehouse.duckdb")
    net_revenue = "select * from published.net_revenue order by fiscal_period"
    emulated = barecount("query", *EMULATOR, "--json", net_revenue)
    assert emulated.returncode == 0, emulated.stderr
    columns, rows = local["net_revenue"]["columns"], local["net_revenue"]["rows"]
    queried = [[row[c] for c in columns] for row in json.loads(emulated.stdout)]
    assert rows and len(queried) == len(rows)
    assert all(_same(a, b) for x, y in zip(rows, queried, strict=True) for a, b in zip(x, y, strict=True))

    # forced, so that the period is written again (a plain re-run finds its work done and writes nothing)
    again = barecount("run", *EMULATOR, "--period", BUILT_PERIODS[0], "--select", "raw/lineitem", "--force")
    assert again.returncode == 0, again.stdout + again.stderr
    verified = barecount("ledger", "verify", *EMULATOR)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    data = emulated_project.root / "data" / "bqemulator"
    with BigQueryEmulator(emulator_python(REPO.root), tmp_path / "emulator.log", data_dir=data) as emulator:
        client = bigquery_client(emulator.project, None, emulator.endpoint)
        with bigquery_connection(client, "acme") as conn:
            emulated_tables = published_values(conn)
            layout = client.get_table(f"{emulator.project}.acme_raw.lineitem")
            recorded = conn.execute(
                "SELECT json_extract_string(facts, '$.bigquery_jobs.queries') FROM evidence.ledger "
                "WHERE kind = 'materialization' AND asset = 'kpi/net_revenue'"
            ).fetchall()
            repeated = conn.execute(
                "SELECT count(*) FROM (SELECT fiscal_period, l_orderkey, l_linenumber FROM raw.lineitem "
                "GROUP BY ALL HAVING count(*) > 1)"
            ).fetchone()
    found = differences(emulated_tables, local, agree=lambda emulated, kept: _same(kept, emulated))
    assert not found, "\n".join(found)
    assert repeated == (0,), "the second run replaced its period instead of adding it again"
    assert layout.time_partitioning.field == "x_pipeline_run_date", "a partition per period (its last day)"
    assert layout.clustering_fields == ["x_org_slug", "fiscal_period"]
    assert recorded and all(int(queries) > 0 for (queries,) in recorded), "each write's job costs are on the record"

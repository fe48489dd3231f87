"""Schema drift at the door, end to end: a source changes shape in its newest extract after a clean run."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from barecount.config.profiles import load_settings
from barecount.config.project import DAGSTER_HOME_ENV, ProjectPaths
from barecount.devtools.sample_data import generate_sample_data
from tests.cli import barecount
from tests.conftest import TEST_SCALE

pytestmark = pytest.mark.long

ORDERS = dg.AssetKey(["acme", "raw", "orders"])
TABLES = ("raw.orders", "raw.lineitem", "gdp.order_lines", "kpi.net_revenue")
REBUILT_LINEAGE = ("x_run_id", "x_ingested_at", "x_ingestion_date")


def _rows(warehouse: Path, table: str, where: str, exclude: tuple[str, ...] = ()) -> list[tuple[object, ...]]:
    hidden = f" EXCLUDE ({', '.join(exclude)})" if exclude else ""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(f"SELECT *{hidden} FROM {table} WHERE {where} ORDER BY ALL").fetchall()


def test_a_drifted_extract_blocks_only_its_period(
    own_sources: tuple[ProjectPaths, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project_copy, sources = own_sources
    calendar = load_settings(project_copy).calendar
    clean = generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar)
    newest = clean.last_period
    # the newest period and a few before it (the whole sample would only take longer)
    recent = ("--from", calendar.previous(calendar.previous(calendar.previous(newest).key).key).key)
    recent_periods = [
        p.key for p in calendar.periods_between(calendar.period(recent[1]).start, calendar.period(newest).end)
    ]
    first = barecount("run", *recent)
    assert first.returncode == 0, first.stdout + first.stderr
    warehouse = project_copy.root / "data" / "acme" / "warehouse.duckdb"
    period = f"fiscal_period = '{newest}'"
    before = {t: _rows(warehouse, t, period) for t in TABLES}
    others_before = {t: len(_rows(warehouse, t, f"NOT {period}")) for t in TABLES}
    assert all(before.values())

    drifted = generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar, drift=True)
    assert drifted.scenarios.drift is not None and drifted.scenarios.drift.period == newest
    second = barecount("run", *recent)
    said = " ".join((second.stdout + second.stderr).split())
    assert second.returncode == 1, said
    assert f"erp.orders {newest}" in said and "o_orderpriority renamed (o_orderpriority -> o_order_priority)" in said
    assert "o_totalprice type (DECIMAL(15,2) -> DECIMAL(18,2))" in said and "Traceback" not in said

    # nothing of the drifted extract landed: the period's Raw orders, GDP and KPI rows are the clean run's
    for table in ("raw.orders", "gdp.order_lines", "kpi.net_revenue"):
        assert _rows(warehouse, table, period) == before[table], table
    # its line items passed their own contract and were re-landed, unchanged but for the run stamps
    assert _rows(warehouse, "raw.lineitem", period, REBUILT_LINEAGE) == [
        r[: -len(REBUILT_LINEAGE)] for r in before["raw.lineitem"]
    ]
    # every other period's extracts are as they were: the drift run found that work done and wrote nothing, but
    # for the period before, whose late rows the blocked extract may carry: it was built without them
    assert {t: len(_rows(warehouse, t, f"NOT {period}")) for t in TABLES} == others_before
    before_newest = calendar.previous(newest).key
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        runs = dict(
            conn.execute("SELECT fiscal_period, list(DISTINCT x_run_id) FROM kpi.net_revenue GROUP BY 1").fetchall()
        )
        clean = runs[newest]
        assert {p: r for p, r in runs.items() if p in recent_periods and p != before_newest} == {
            p: clean for p in recent_periods if p != before_newest
        }
        assert len(runs[before_newest]) == 1 and runs[before_newest] != clean
        noops = conn.execute(
            "SELECT DISTINCT partition FROM evidence.ledger WHERE kind = 'noop' AND asset = 'kpi/net_revenue'"
        ).fetchall()
        assert sorted(p for (p,) in noops) == sorted(set(recent_periods) - {newest, before_newest})

    blocked = barecount("contracts", "blocked", "--json")
    assert blocked.returncode == 0, blocked.stderr
    listed = json.loads(blocked.stdout)
    assert [(b["contract"], b["fiscal_period"], b["proposal"]) for b in listed] == [
        ("erp.orders", newest, "contracts/erp/orders/2.0.0.yaml")
    ]
    proposal = yaml.safe_load((project_copy.contracts / "erp" / "orders" / "2.0.0.yaml").read_text())
    assert proposal["status"] == "proposed"
    diff = barecount("contracts", "diff", "erp.orders", "--json")
    assert diff.returncode == 0, diff.stderr
    changes = {(c["column"], c["change"], c["after"]) for c in json.loads(diff.stdout)["changes"]}
    assert changes == {
        ("o_orderpriority", "source name", "o_order_priority"),
        ("o_totalprice", "type", "DECIMAL(18,2)"),
    }

    # the plan says so before a run: the drifted period is held at Raw and everything built from it
    planned = {p["asset"]: p for p in json.loads(barecount("plan", *recent, "--json").stdout)}
    assert list(planned["raw/orders"]["held"]) == [newest] and "breaks erp.orders 1.0.0" in str(
        planned["raw/orders"]["held"]
    )
    assert list(planned["gdp/order_lines"]["held"]) == list(planned["published/net_revenue"]["held"]) == [newest]

    # a repeated run tries the blocked period again (and only it), and blocks it again
    third = barecount("run", *recent)
    assert third.returncode == 1 and "unchanged since their last build" in third.stdout, third.stdout
    assert "1 period(s) blocked" in " ".join(third.stderr.split())
    verified = barecount("ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    kinds = barecount("ledger", "show", "--asset", "raw/orders", "--partition", newest, "--json")
    assert "block" in {e["kind"] for e in json.loads(kinds.stdout)}
    # in Dagster, that run's other periods were found done (no-ops) and are materialized; the blocked one has an
    # observation saying why, no materialization, and shows as failed; the schema gate says why too
    home = project_copy.root / ".dagster"
    monkeypatch.setenv(DAGSTER_HOME_ENV, str(home))
    asset = ORDERS
    with dg.DagsterInstance.from_config(str(home)) as instance:
        latest = instance.get_runs(limit=1)[0]
        assert latest.status == dg.DagsterRunStatus.FAILURE
        landed = instance.fetch_materializations(asset, limit=1000).records
        this_run = {r.partition_key: r.asset_materialization for r in landed if r.run_id == latest.run_id}
        assert newest not in this_run and set(this_run) == set(recent_periods) - {newest}
        assert all(m is not None and "unchanged_since_run" in m.metadata for m in this_run.values())
        observed = instance.fetch_observations(asset, limit=10).records
        (held,) = [r.asset_observation for r in observed if r.run_id == latest.run_id]
        assert (
            held is not None
            and held.partition == newest
            and "blocked by schema drift" in str(held.metadata["held_back"].value)
        )
        statuses = instance.get_status_by_partition(
            asset, recent_periods, dg.StaticPartitionsDefinition(load_settings(project_copy).partition_keys)
        )
        assert statuses is not None and statuses[newest] == dg.AssetPartitionStatus.FAILED
        assert {statuses[k] for k in recent_periods if k != newest} == {dg.AssetPartitionStatus.MATERIALIZED}
        (gate,) = [
            e.dagster_event.event_specific_data
            for e in instance.all_logs(latest.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            if e.dagster_event
            and e.dagster_event.event_specific_data.asset_check_key  # type: ignore[union-attr]
            == dg.AssetCheckKey(dg.AssetKey(["acme", "raw", "orders"]), "schema_approved")
        ]
        assert not gate.passed and newest in str(gate.description)  # type: ignore[union-attr]

    # the data owner approves the proposal: the next run lands the period under it, and only it
    approved = barecount("contracts", "approve", "erp.orders", "2.0.0", "--by", "dana.owner", "--note", "renamed")
    assert approved.returncode == 0, approved.stderr
    assert f"Blocked period(s) it lets land: {newest}" in " ".join(approved.stdout.split())
    resumed = barecount("run", *recent)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads(barecount("contracts", "blocked", "--json").stdout) == []
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        # the wider type of the new version applies to the whole table; older periods keep their values
        versions = conn.execute(
            "SELECT x_contract_version, typeof(any_value(o_totalprice)), count(*) FROM raw.orders GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert [(v, t) for v, t, _ in versions] == [("1.0.0", "DECIMAL(18,2)"), ("2.0.0", "DECIMAL(18,2)")]
        assert conn.execute(f"SELECT count(*) FROM raw.orders WHERE {period}").fetchone() == (versions[1][2],)
        assert conn.execute(f"SELECT count(*) FROM kpi.net_revenue WHERE {period}").fetchone() == (1,)
        assert conn.execute("SELECT sum(o_totalprice) FROM raw.orders").fetchone()[0] > 0  # type: ignore[index]
    history = json.loads(barecount("ledger", "show", "--asset", "raw/orders", "--partition", newest, "--json").stdout)
    kinds = [e["kind"] for e in history]
    assert kinds.index("block") < kinds.index("approval") < len(kinds) - 1 - kinds[::-1].index("materialization")
    assert barecount("ledger", "verify").returncode == 0


def test_a_stream_whose_first_extract_drifted_lands_nothing_and_says_why(
    own_sources: tuple[ProjectPaths, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project_copy, sources = own_sources
    calendar = load_settings(project_copy).calendar
    newest = generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar, drift=True).last_period
    parents = ("raw/region", "raw/nation", "raw/customer")
    blocked = barecount("run", "--period", newest, *(f"--select={a}" for a in (*parents, "raw/orders")))
    said = " ".join((blocked.stdout + blocked.stderr).split())
    assert blocked.returncode == 1 and f"erp.orders {newest}" in said, said
    assert "1 period(s) blocked by schema drift" in said and "Traceback" not in said and "failed:" not in said
    warehouse = project_copy.root / "data" / "acme" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        found = conn.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw'").fetchall()
    tables = {t for (t,) in found}
    assert "orders" not in tables and {"region", "nation", "customer"} <= tables  # the parents landed
    # the UI's run page says the same: raw/orders failed because of the drift, its gates on nothing landed passed
    home = project_copy.root / ".dagster"
    monkeypatch.setenv(DAGSTER_HOME_ENV, str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_id = instance.get_runs(limit=1)[0].run_id
        (failure,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        assert failure.step_key == "build_periods"  # the step that lands the periods of raw/orders
        assert "blocked by schema drift" in str(failure.dagster_event.step_failure_data.error)  # type: ignore[union-attr]
        gates = {
            e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed  # type: ignore[union-attr]
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            if e.dagster_event and e.dagster_event.event_specific_data.asset_key == ORDERS  # type: ignore[union-attr]
        }
        assert gates == {"schema_approved": False, "rows_accounted": True, "conforms_to_contract": True}
    listed = json.loads(barecount("contracts", "blocked", "--json").stdout)
    assert [(b["contract"], b["fiscal_period"]) for b in listed] == [("erp.orders", newest)]

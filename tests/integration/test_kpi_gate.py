"""The KPI gate end to end: a broken price list trips the threshold for exactly its period, which is not published."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.devtools.sample_data import generate_sample_data
from tests.cli import barecount
from tests.conftest import TEST_SCALE

pytestmark = pytest.mark.long

ANOMALY = "FY1995-P03"
AROUND = ("--from", "FY1994-P12", "--to", "FY1995-P07")
"""The periods built: the anomaly with neighbours on both sides (the whole sample would only take longer)."""


def _verdicts() -> dict[str, bool]:
    found = barecount(
        "query",
        "SELECT partition, arg_max(passed, checked_at) AS passed FROM evidence.gate_results "
        "WHERE gate = 'thresholds' AND asset = 'kpi/net_revenue' GROUP BY 1",
        "--json",
    )
    return {r["partition"]: r["passed"] for r in json.loads(found.stdout)}


def _published() -> list[str]:
    found = barecount("query", "SELECT fiscal_period FROM published.net_revenue ORDER BY 1", "--json")
    return [r["fiscal_period"] for r in json.loads(found.stdout)]


def _published_at_anomaly(warehouse: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every published table's rows of the anomalous period, without what a rebuild stamps anew."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        tables = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'published'")
        return {
            str(name): conn.execute(
                f"SELECT * EXCLUDE (published_at, x_run_id, x_ingested_at, x_ingestion_date) FROM published.{name} "
                f"WHERE fiscal_period = '{ANOMALY}' ORDER BY ALL"
            ).fetchall()
            for (name,) in tables.fetchall()
        }


def test_an_anomalous_period_fails_its_threshold_and_passes_once_fixed(own_sources: tuple[ProjectPaths, Path]) -> None:
    project_copy, sources = own_sources
    calendar = load_settings(project_copy).calendar
    manifest = generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar, anomalies=[ANOMALY])
    assert [a.period for a in manifest.scenarios.anomalies if a.lines > 0] == [ANOMALY]
    tripped = barecount("run", *AROUND)
    said = " ".join((tripped.stdout + tripped.stderr).split())
    assert tripped.returncode == 1, said
    # the last line counts what exit 1 says: the KPIs that tripped failed, their published periods were held
    (last,) = tripped.stdout.strip().splitlines()[-1:]
    assert last.startswith("Failed. ") and "FAILED=6 HELD=6 SKIPPED=0" in last, last
    # every KPI a price changes trips; counts and rates do not
    tripped_kpis = [
        "average_order_value",
        "discount_revenue",
        "gross_profit",
        "net_revenue",
        "pricing_summary",
        "revenue_per_working_day",
    ]
    assert (
        f"{len(tripped_kpis)} partition(s) failed a gate and were held back: "
        + "; ".join(f"kpi/{k} {ANOMALY} (thresholds)" for k in tripped_kpis)
    ) in said
    verdicts = _verdicts()
    assert {p for p, ok in verdicts.items() if not ok} == {ANOMALY} and len(verdicts) == 8
    assert _published() == sorted(set(verdicts) - {ANOMALY})  # every other period, not the anomalous one
    assert (
        f"{len(tripped_kpis)} KPI partition(s) not published: "
        + "; ".join(f"published/{k} {ANOMALY}" for k in tripped_kpis)
    ) in said
    while_anomalous = _published_at_anomaly(load_settings(project_copy).warehouse_path)
    # publishing again on its own asks the evidence, not the run: the period stays unpublished
    again = barecount("run", "--period", ANOMALY, "--select", "published/net_revenue", "--force")
    assert again.returncode == 1 and f"published/net_revenue {ANOMALY}" in " ".join(again.stderr.split())
    assert ANOMALY not in _published()

    generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar)
    fixed = barecount("run", *AROUND)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert all(_verdicts().values())
    assert ANOMALY in _published() and len(_published()) == len(verdicts)
    # what was published while the prices were wrong is what the clean extract gives, or nothing
    clean = _published_at_anomaly(load_settings(project_copy).warehouse_path)
    assert set(while_anomalous) == set(clean) and len(clean) == 9
    for table, rows in while_anomalous.items():
        assert rows in ([], clean[table]), table
    assert {t for t, rows in while_anomalous.items() if not rows} == set(tripped_kpis)
    held = barecount("ledger", "show", "--asset", "published/net_revenue", "--partition", ANOMALY, "--json")
    reasons = [e["facts"]["reason"] for e in json.loads(held.stdout) if e["kind"] == "hold"]
    assert len(reasons) == 2 and all("thresholds" in r and "% above" in r for r in reasons)  # one per run


def test_a_candidate_version_writes_beside_the_active_one_and_is_not_published(project: ProjectPaths) -> None:
    folder = project.kpis / "net_revenue"
    candidate = (folder / "1.0.0.yaml").read_text().replace("version: 1.0.0", "version: 1.1.0")
    candidate = candidate.replace("(1 - l.l_discount)", "(1 - l.l_discount) * (1 + l.l_tax)")  # its reconciliation
    (folder / "1.1.0.yaml").write_text(candidate.replace("status: active", "status: candidate"))
    (folder / "1.1.0.sql").write_text(
        (folder / "1.0.0.sql").read_text().replace("(1 - discount)", "(1 - discount) * (1 + tax)")
    )
    ran = barecount("run", "--from", "FY1995-P02", "--to", "FY1995-P04")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    compared = barecount(
        "query",
        "SELECT a.fiscal_period, a.kpi_version AS active, c.kpi_version AS candidate, c.value > a.value AS higher "
        "FROM kpi.net_revenue a JOIN kpi.net_revenue__v1_1_0 c USING (fiscal_period) ORDER BY 1",
        "--json",
    )
    assert json.loads(compared.stdout) == [
        {"fiscal_period": p, "active": "1.0.0", "candidate": "1.1.0", "higher": True}
        for p in ("FY1995-P02", "FY1995-P03", "FY1995-P04")
    ]
    gates = barecount(
        "query",
        "SELECT DISTINCT asset, gate FROM evidence.gate_results WHERE asset LIKE 'kpi/net_revenue%' ORDER BY ALL",
        "--json",
    )
    assert [(g["asset"], g["gate"]) for g in json.loads(gates.stdout)] == [
        ("kpi/net_revenue", "anomaly"),
        ("kpi/net_revenue", "reconciliation"),
        ("kpi/net_revenue", "thresholds"),
        ("kpi/net_revenue__v1_1_0", "anomaly"),
        ("kpi/net_revenue__v1_1_0", "reconciliation"),
        ("kpi/net_revenue__v1_1_0", "thresholds"),
    ]
    assert barecount("run", "--period", "FY1995-P03", "--select", "published/net_revenue__v1_1_0").returncode == 2


def test_a_kpi_whose_sql_fails_at_run_time_fails_alone_with_the_sql_error(project: ProjectPaths) -> None:
    sql = project.kpis / "order_count" / "1.0.0.sql"  # parses, names its table: only the run can tell
    # sound on empty tables (the project loads), it fails on the first row: only a run finds out
    sql.write_text(
        sql.read_text().replace("COUNT(DISTINCT order_key)", "COUNT(DISTINCT CAST(order_key || 'x' AS BIGINT))")
    )
    ran = barecount("run", "--from", "FY1995-P02", "--to", "FY1995-P03")
    said = " ".join((ran.stdout + ran.stderr).split())
    assert ran.returncode == 1, said
    assert "kpi/order_count" in said and "Could not convert string" in said
    status = {line.split()[1]: line.split()[0] for line in ran.stdout.splitlines() if " periods " in line}
    assert status["kpi/order_count"] == "FAILED"
    assert status["kpi/net_revenue"] == status["published/net_revenue"] == status["kpi/pricing_summary"] == "PASSED"
    built = barecount("query", "SELECT count(*) AS n FROM published.net_revenue", "--json")
    assert json.loads(built.stdout) == [{"n": 2}]

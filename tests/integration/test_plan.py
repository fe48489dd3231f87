"""`barecount plan`: what a run would build and why, said before it runs, and agreed with by the run."""

from __future__ import annotations

import json

import duckdb
import pytest

from barecount.config.project import ProjectPaths
from tests.cli import barecount
from tests.conftest import BUILT_PERIODS

pytestmark = pytest.mark.long

BUILT = ("--from", BUILT_PERIODS[0], "--to", BUILT_PERIODS[1])


def _plan(*args: str) -> dict[str, dict[str, object]]:
    planned = barecount("plan", *args, "--json")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    return {p["asset"]: p for p in json.loads(planned.stdout)}


def _ledger_head(project: ProjectPaths) -> tuple[object, ...] | None:
    with duckdb.connect(str(project.root / "data" / "acme" / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute("SELECT max(seq), count(*) FROM evidence.ledger").fetchone()


def test_a_plan_says_what_a_run_would_build_and_why_and_the_run_agrees(built_project: ProjectPaths) -> None:
    head = _ledger_head(built_project)
    # the built periods: nothing to build
    unchanged = _plan(*BUILT)
    assert all(not p["build"] and not p["held"] for p in unchanged.values()), unchanged
    assert len(unchanged) == 34

    # a KPI's SQL edited: it and its published table, for every period; nothing else
    sql = built_project.kpis / "net_revenue" / "1.0.0.sql"
    sql.write_text(sql.read_text() + "\n-- a comment changes the code version\n")
    planned = _plan(*BUILT)
    building = {asset: set(p["build"].values()) for asset, p in planned.items() if p["build"]}  # type: ignore[union-attr]
    assert building == {
        "kpi/net_revenue": {"code changed"},
        "published/net_revenue": {"input rebuilt: kpi/net_revenue"},
    }
    assert len(planned["kpi/net_revenue"]["build"]) == 4  # type: ignore[arg-type]

    # a period never built: new at Raw, built downstream, and the period before it reads its late rows
    after = _plan("--period", "FY1995-P05")
    assert after["raw/orders"]["build"] == {"FY1995-P05": "new: never built"}
    assert "gdp/order_lines" in after and "FY1995-P05" in after["gdp/order_lines"]["build"]  # type: ignore[operator]
    forced = _plan("--period", BUILT_PERIODS[0], "--force", "--select", "raw/orders")
    assert list(forced) == ["raw/orders"] and forced["raw/orders"]["build"] == {BUILT_PERIODS[0]: "forced"}
    assert _ledger_head(built_project) == head  # planning wrote nothing

    # the run does what the plan said: the edited KPI rebuilt in the four periods, everything else unchanged
    shown = barecount("plan", *BUILT)
    assert "kpi/net_revenue" in shown.stdout and "code changed" in shown.stdout and "Nothing was run" in shown.stdout
    ran = barecount("run", *BUILT)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    verdicts = {line.split()[1]: line for line in ran.stdout.splitlines() if " periods " in line}
    assert "periods 4 " in verdicts["kpi/net_revenue"] and "periods 4 " in verdicts["published/net_revenue"]
    assert all(line.startswith("UNCHANGED") for a, line in verdicts.items() if not a.endswith("/net_revenue"))
    assert all(not p["build"] for p in _plan(*BUILT).values())

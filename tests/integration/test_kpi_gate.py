"""The KPI gate end to end: a broken price list trips the threshold for exactly its period, which is not published."""

from __future__ import annotations

import json
from pathlib import Path

from barecount.profiles import load_settings
from barecount.project import ProjectPaths
from barecount.sample_data import generate_sample_data
from tests.conftest import TEST_SCALE
from tests.integration.test_cli import barecount

ANOMALY = "FY1995-P03"


def _verdicts() -> dict[str, bool]:
    found = barecount(
        "query",
        "SELECT partition, arg_max(passed, checked_at) AS passed FROM evidence.gate_results "
        "WHERE gate = 'thresholds' GROUP BY 1",
        "--json",
    )
    return {r["partition"]: r["passed"] for r in json.loads(found.stdout)}


def _published() -> list[str]:
    found = barecount("query", "SELECT fiscal_period FROM published.net_revenue ORDER BY 1", "--json")
    return [r["fiscal_period"] for r in json.loads(found.stdout)]


def test_an_anomalous_period_fails_its_threshold_and_passes_once_fixed(
    project_copy: ProjectPaths, tmp_path: Path
) -> None:
    sources = tmp_path / "sources"
    profile = project_copy.profiles / "local.yaml"
    profile.write_text(profile.read_text().replace("sources_dir: data/sources", f"sources_dir: {sources}"))
    calendar = load_settings(project_copy).calendar
    manifest = generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar, anomaly=ANOMALY)
    assert manifest.scenarios.anomaly is not None and manifest.scenarios.anomaly.lines > 0
    tripped = barecount("run")
    said = " ".join((tripped.stdout + tripped.stderr).split())
    assert tripped.returncode == 1, said
    assert f"1 partition(s) failed a gate and were held back: kpi/net_revenue {ANOMALY} (thresholds)" in said
    verdicts = _verdicts()
    assert {p for p, ok in verdicts.items() if not ok} == {ANOMALY} and len(verdicts) > 70
    assert _published() == sorted(set(verdicts) - {ANOMALY})  # every other period, not the anomalous one
    assert f"1 KPI partition(s) not published: published/net_revenue {ANOMALY}" in said
    # publishing again on its own asks the evidence, not the run: the period stays unpublished
    again = barecount("run", "--period", ANOMALY, "--select", "published/net_revenue", "--force")
    assert again.returncode == 1 and f"published/net_revenue {ANOMALY}" in " ".join(again.stderr.split())
    assert ANOMALY not in _published()

    generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar)
    fixed = barecount("run")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert all(_verdicts().values())
    assert ANOMALY in _published() and len(_published()) == len(verdicts)
    held = barecount("ledger", "show", "--asset", "published/net_revenue", "--partition", ANOMALY, "--json")
    reasons = [e["facts"]["reason"] for e in json.loads(held.stdout) if e["kind"] == "hold"]
    assert len(reasons) == 2 and all("thresholds" in r and "% above" in r for r in reasons)  # one per run

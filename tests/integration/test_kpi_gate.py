"""The KPI gate end to end: a broken price list trips the threshold for exactly its period."""

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

    generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar)
    fixed = barecount("run")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert all(_verdicts().values())

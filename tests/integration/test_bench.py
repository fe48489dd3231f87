"""`barecount bench`: a complete report (reference and BareCount per step, memory, ratios, partition scaling)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from barecount.devtools.bench.suite import ONE_AT_A_TIME, SCALING_PERIODS, STEPS
from tests.conftest import REPO

pytestmark = pytest.mark.long


def test_bench_reports_every_step_memory_ratios_and_partition_scaling(tmp_path: Path) -> None:
    results = tmp_path / "results.md"
    command = [str(Path(sys.executable).with_name("barecount")), "bench", "--scale", "0.01", "--repeat", "1",
               "--json", "--work", str(tmp_path / "work"), "--output", str(results)]  # fmt: skip
    done = subprocess.run(command, cwd=REPO.root, capture_output=True, text=True, env=dict(os.environ), timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)

    assert int(report["machine"]["cores"]) >= 1 and report["machine"]["memory"].endswith("GiB")
    assert set(report["versions"]) >= {"barecount", "dagster", "duckdb"}
    (scale,) = report["scales"]
    assert scale["scale"] == 0.01 and scale["periods"] > SCALING_PERIODS
    reference, ours = scale["reference"], scale["barecount"]
    for step in STEPS:
        assert reference["steps"][step]["seconds"]["median"] > 0, step
        assert ours["steps"][step]["seconds"]["median"] > 0, step
        assert ours["steps"][step]["rows_per_second"] > 0, step
        assert scale["ratios"][step] > 0, step
    assert ours["steps"]["orchestration"]["seconds"]["median"] >= 0
    assert scale["ratios"]["total"] > 0
    # the reference does the same work: the same rows land in raw and quarantine, and in gdp
    assert reference["steps"]["raw"]["rows"] == ours["steps"]["raw"]["rows"] > 0
    assert reference["steps"]["gdp"]["rows"] == ours["steps"]["gdp"]["rows"] > 0
    # BareCount's kpi step also publishes each KPI partition that passed its gates
    assert ours["steps"]["kpi"]["rows"] == 2 * reference["steps"]["kpi"]["rows"] > 0
    assert reference["peak_rss_mb"]["median"] > 0 and ours["peak_rss_mb"]["median"] > 0
    assert ours["run_seconds"]["median"] > 0

    scaling = report["scaling"]
    assert [(r["periods"], r["runs"]) for r in scaling["runs"]] == [
        (1, 1), (SCALING_PERIODS, 1), (scale["periods"], 1), (ONE_AT_A_TIME, ONE_AT_A_TIME),
    ]  # fmt: skip
    assert all(r["run_seconds"] > 0 and r["wall"] >= r["run_seconds"] for r in scaling["runs"])
    assert isinstance(scaling["per_extra_partition_ms"], float) and scaling["one_at_a_time_ms"] > 0
    # Dagster's floor beside each target: what no body, however quick, takes away
    assert scale["dagster_floor"]["total"]["seconds"]["median"] > 0
    assert scaling["floor_one_period_ms"] > 0 and isinstance(scaling["floor_per_extra_partition_ms"], float)

    written = results.read_text()
    headings = ("# BareCount benchmark", "## TPC-H SF0.01", "## Partitions (SF0.01)", "## Targets", "Machine: cores")
    for heading in headings:
        assert heading in written, heading
    assert "| target | wanted | least possible on Dagster | measured |" in written

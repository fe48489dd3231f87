"""What `barecount run` prints when its output is not a terminal (CI, a log, `| tee`): a line per asset as it
finishes, then one line counting the verdicts, which agrees with the exit code."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from barecount.config.project import ProjectPaths
from tests.cli import BARECOUNT
from tests.conftest import BUILT_PERIODS

pytestmark = pytest.mark.long

VERDICTS = ("PASSED", "WARNED", "FAILED", "HELD", "SKIPPED", "UNCHANGED")
SUMMARY = re.compile(r"^(Done|Failed)\. " + " ".join(rf"{v}=(\d+)" for v in VERDICTS) + r" TOTAL=(\d+)$")


def test_a_piped_run_prints_each_asset_as_it_finishes_and_a_summary_that_agrees_with_its_exit_code(
    project: ProjectPaths,
) -> None:
    run = subprocess.Popen(
        [BARECOUNT, "run", "--from", BUILT_PERIODS[0], "--to", BUILT_PERIODS[1]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert run.stdout is not None
    lines: list[str] = []
    running_at_first_asset: bool | None = None
    for line in run.stdout:
        lines.append(line.rstrip("\n"))
        if running_at_first_asset is None and line.split(" ", 1)[0] in VERDICTS:
            running_at_first_asset = run.poll() is None  # 33 assets to go: the line came as the asset finished
    code = run.wait(timeout=600)
    assert run.stderr is not None
    said = "\n".join(lines) + run.stderr.read()
    assert code == 0, said
    assert running_at_first_asset, said

    assets = [line.split()[1] for line in lines if line.split(" ", 1)[0] in VERDICTS]
    assert len(assets) == len(set(assets)) == 34, said  # every asset of the graph, once
    assert assets[0].startswith("raw/") and assets[-1].startswith(("kpi/", "published/")), assets
    orders = next(line for line in lines if line.split()[1:2] == ["raw/orders"])
    assert re.search(r"periods 4 .* rows +[\d,]+ .* s  checks 4 passed$", orders), orders

    summary = SUMMARY.match(lines[-1])
    assert summary is not None, lines[-1]
    counts = dict(zip(VERDICTS, map(int, summary.groups()[1:-1]), strict=True))
    assert summary[1] == "Done" and counts["FAILED"] == counts["HELD"] == counts["SKIPPED"] == 0, lines[-1]
    assert sum(counts.values()) == int(summary.groups()[-1]) == 34
    assert [line for line in lines if line.startswith("┏")] == []  # no live table off a terminal

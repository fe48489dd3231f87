"""`barecount status` on a healthy warehouse: every asset's newest build, the ledger head, exit 0."""

from __future__ import annotations

import json

import pytest

from barecount.config.project import ProjectPaths
from tests.cli import barecount
from tests.conftest import BUILT_PERIODS

pytestmark = pytest.mark.long


def test_status_of_a_healthy_warehouse_needs_nobody(built_project: ProjectPaths) -> None:
    shown = barecount("status", "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    status = json.loads(shown.stdout)
    by_asset = {a["asset"]: a for a in status["assets"]}
    assert by_asset["raw/orders"]["last_period"] == BUILT_PERIODS[-1]
    assert by_asset["published/net_revenue"]["periods_built"] == 4  # FY1995-P01..P04
    assert by_asset["raw/customer"]["last_period"] is None and by_asset["raw/customer"]["last_run"]
    assert status["needs_a_person"] == [] and status["undelivered_alerts"] == []
    head = barecount("ledger", "head").stdout.strip()
    assert f"{status['ledger_head']['seq']}:{status['ledger_head']['hash']}" in head
    text = barecount("status")
    assert text.returncode == 0 and "Nothing needs a person." in text.stdout

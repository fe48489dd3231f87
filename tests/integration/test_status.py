"""`barecount status` on a healthy warehouse: every asset's newest build, its freshness, the ledger head, exit 0;
and, a period later, the extract that never came: `missing`, exit 1."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from tests.cli import barecount
from tests.conftest import BUILT_PERIODS

pytestmark = pytest.mark.long


def test_status_of_a_healthy_warehouse_needs_nobody(built_project: ProjectPaths) -> None:
    calendar = load_settings(built_project).calendar
    newest = calendar.period(BUILT_PERIODS[-1])
    # three days after the newest built period: its extract was due (1 day after it ended) and has landed
    as_of = f"{newest.end + timedelta(days=3):%Y-%m-%d}"
    shown = barecount("status", "--json", "--as-of", as_of)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    status = json.loads(shown.stdout)
    by_asset = {a["asset"]: a for a in status["assets"]}
    assert by_asset["raw/orders"]["last_period"] == BUILT_PERIODS[-1]
    assert by_asset["published/net_revenue"]["periods_built"] == 4  # FY1995-P01..P04
    assert by_asset["raw/customer"]["last_period"] is None and by_asset["raw/customer"]["last_run"]
    assert by_asset["raw/orders"]["freshness"]["verdict"] == "fresh"
    assert by_asset["raw/orders"]["freshness"]["period"] == BUILT_PERIODS[-1]
    assert by_asset["raw/customer"]["freshness"] is None  # a snapshot has no period to be due
    assert status["needs_a_person"] == [] and status["undelivered_alerts"] == []
    head = barecount("ledger", "head").stdout.strip()
    assert f"{status['ledger_head']['seq']}:{status['ledger_head']['hash']}" in head
    text = barecount("status", "--as-of", as_of)
    assert text.returncode == 0 and "Nothing needs a person." in text.stdout
    assert f"fresh {BUILT_PERIODS[-1]}" in text.stdout

    # a period later, the next extract was due and never landed
    following = calendar.next(newest.key)
    later = barecount("status", "--json", "--as-of", f"{following.end + timedelta(days=3):%Y-%m-%d}")
    assert later.returncode == 1, later.stdout + later.stderr
    shown_later = json.loads(later.stdout)
    orders = next(a for a in shown_later["assets"] if a["asset"] == "raw/orders")
    assert (orders["freshness"]["verdict"], orders["freshness"]["period"]) == ("missing", following.key)
    assert orders["needs_a_person"]
    assert f"raw/orders {following.key} is missing: due " in " ".join(shown_later["needs_a_person"])
    assert f"the newest landed period is {BUILT_PERIODS[-1]}" in orders["freshness"]["detail"]

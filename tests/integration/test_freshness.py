"""The freshness SLA (contract slaProperties latency, 1 day in the sample): an extract delivered on time is
fresh; one delivered after its period's deadline lands all the same, warns (the run still exits 0), and
`barecount status` and the UI's freshness check show it late, and a `late` alert goes out once."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from barecount.config.instance import open_instance
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.devtools.sample_data import generate_sample_data
from tests.cli import barecount
from tests.conftest import TEST_SCALE
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.long


def test_an_extract_delivered_after_its_deadline_is_late_but_lands(
    own_sources: tuple[ProjectPaths, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, sources = own_sources
    receiver = Receiver([200])
    monkeypatch.setenv("BARECOUNT_ALERT_WEBHOOK_URL", receiver.url)
    calendar = load_settings(paths).calendar
    generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar)
    on_time, late = "FY1995-P01", "FY1995-P02"
    extract = sources / "erp" / "orders" / f"{on_time}.parquet"
    delivered = datetime.fromtimestamp(extract.stat().st_mtime, UTC)
    assert delivered == datetime.combine(calendar.period(on_time).end + timedelta(days=1), datetime.min.time(), UTC) + (
        timedelta(hours=6)
    ), "the sample's ERP delivers the morning after a period ends"
    os.utime(sources / "erp" / "orders" / f"{late}.parquet")  # delivered now: decades after its deadline

    try:
        ran = barecount("run", "--from", on_time, "--to", late, "--verbose")
    finally:
        receiver.close()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (alert,) = receiver.accepted
    assert (alert["kind"], alert["asset"], alert["period"], alert["gate"]) == ("late", "raw/orders", late, "freshness")
    assert alert["reason"].startswith("late: delivered")
    (orders,) = [line for line in ran.stdout.splitlines() if line.startswith("WARNED") and " raw/orders " in line]
    assert "1 warned" in orders
    warnings = ran.stdout[ran.stdout.index("Warnings: built and published all the same") :]
    assert "raw/orders" in warnings and late in warnings and on_time not in warnings

    with open_instance(paths) as instance:
        (check,) = [
            e.dagster_event.event_specific_data
            for e in instance.all_logs(instance.get_runs(limit=1)[0].run_id)
            if e.dagster_event is not None
            and e.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
            and e.dagster_event.event_specific_data.asset_key == dg.AssetKey(["acme", "raw", "orders"])  # type: ignore[union-attr]
            and e.dagster_event.event_specific_data.check_name == "freshness"  # type: ignore[union-attr]
        ]
    assert not check.passed  # type: ignore[union-attr]
    failing = check.metadata["failing_partitions"].value  # type: ignore[union-attr]
    assert late in failing and "late: delivered" in failing and on_time not in failing

    status = barecount("status", "--json")
    assert status.returncode == 1
    (raw_orders,) = [a for a in json.loads(status.stdout)["assets"] if a["asset"] == "raw/orders"]
    assert [(c["gate"], c["period"]) for c in raw_orders["failing_checks"]] == [("freshness", late)]
    assert raw_orders["failing_checks"][0]["detail"].startswith("late: delivered")

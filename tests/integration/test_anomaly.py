"""Anomaly scores end to end: the sample's `--anomaly K` scenario, built whole, flags exactly its K periods on the
KPIs a price changes and nothing anywhere else; the check keeps the score, the baseline and a narrative; the run
warns (the thresholds hold the periods back, the score does not), and each flag is one `anomaly` alert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from barecount.config.instance import open_instance
from barecount.config.project import ProjectPaths
from barecount.devtools.sample_data import SampleManifest
from tests.cli import barecount
from tests.conftest import TEST_SCALE
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.long

PRICED = {"kpi/net_revenue", "kpi/gross_profit", "kpi/average_order_value"}
"""The scored KPIs a price list moves; order_count and on_time_delivery_rate are scored too, and must not move."""


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    made = Receiver([200])
    monkeypatch.setenv("BARECOUNT_ALERT_WEBHOOK_URL", made.url)
    yield made
    made.close()


def _verdicts() -> list[dict[str, object]]:
    found = barecount(
        "query",
        "SELECT asset, partition, passed, detail FROM evidence.gate_results WHERE gate = 'anomaly' ORDER BY ALL",
        "--json",
    )
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout)


def test_the_anomaly_scenario_flags_exactly_its_periods(
    own_sources: tuple[ProjectPaths, Path], receiver: Receiver
) -> None:
    paths, sources = own_sources
    made = barecount("sample-data", "--scale", str(TEST_SCALE), "--anomaly", "2")
    assert made.returncode == 0, made.stderr
    manifest = SampleManifest.model_validate_json((sources / "manifest.json").read_text())
    inflated = {a.period for a in manifest.scenarios.anomalies}
    assert len(inflated) == 2 and all(a.lines > 0 for a in manifest.scenarios.anomalies)

    ran = barecount("run")
    assert ran.returncode == 1, ran.stdout + ran.stderr  # the thresholds hold the inflated periods back
    said = " ".join(ran.stdout.split())
    assert "Warnings: built and published all the same" in said

    verdicts = _verdicts()
    flagged = {(str(v["asset"]), str(v["partition"])) for v in verdicts if not v["passed"]}
    assert flagged == {(kpi, period) for kpi in PRICED for period in inflated}
    scored = {str(v["asset"]) for v in verdicts if "robust deviations" in str(v["detail"])}
    assert scored == PRICED | {"kpi/order_count", "kpi/on_time_delivery_rate"}  # all five scored, two never flagged
    for verdict in verdicts:
        if not verdict["passed"]:
            assert str(verdict["detail"]).endswith(": an anomaly."), verdict

    with open_instance(paths) as instance:
        key = dg.AssetCheckKey(dg.AssetKey(["acme", "kpi", "net_revenue"]), "anomaly")
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        evaluation = record.event.dagster_event.event_specific_data  # type: ignore[union-attr]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN  # type: ignore[union-attr]
    assert set(evaluation.metadata["flagged"].value) == inflated  # type: ignore[union-attr]

    # one period's verdict, as the UI shows a single partition's check: score, baseline, narrative
    period = sorted(inflated)[0]
    again = barecount("run", "--period", period, "--select", "kpi/net_revenue", "--force")
    assert again.returncode == 1 and "(thresholds)" in again.stderr, again.stdout + again.stderr
    with open_instance(paths) as instance:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        metadata = record.event.dagster_event.event_specific_data.metadata  # type: ignore[union-attr]
    assert float(metadata["score"].value) > 5
    assert "median" in metadata["baseline"].value
    assert metadata["narrative"].value.startswith(f"Net revenue in {period} is ")

    alerts = [a for a in receiver.accepted if a["kind"] == "anomaly"]
    assert sorted((a["asset"], a["period"]) for a in alerts) == sorted(flagged)  # once each, the rerun sent none
    assert all(a["gate"] == "anomaly" and "robust deviations" in a["reason"] for a in alerts)

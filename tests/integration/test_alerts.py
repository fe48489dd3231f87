"""Alerts by webhook, against receivers on 127.0.0.1: a period blocked by drift is posted once, with its period,
contract and proposed version; a receiver that fails twice gets it on the third attempt; one that never answers
leaves the run's result as it was and the alert recorded as undelivered; running again sends nothing twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from barecount.config.instance import open_instance
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import ALL_ASSETS_JOB, build_definitions
from barecount.defs.sensors import ALERT_SENSOR
from tests.cli import barecount
from tests.webhook_receiver import TOKEN, Receiver

pytestmark = pytest.mark.long

TARGETS = """
alerts:
  - {name: ops, url_env: TEST_OPS_URL, timeout_seconds: 1, attempts: 3, backoff_seconds: 0.1}
  - {name: flaky, url_env: TEST_FLAKY_URL, timeout_seconds: 1, attempts: 3, backoff_seconds: 0.1}
  - {name: silent, url_env: TEST_SILENT_URL, timeout_seconds: 1, attempts: 3, backoff_seconds: 0.1}
"""


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {"ops": Receiver([200]), "flaky": Receiver([500, 500, 200]), "silent": Receiver([0])}
    yield made
    for receiver in made.values():
        receiver.close()


def _alert_rows(paths: ProjectPaths) -> list[tuple[object, ...]]:
    with duckdb.connect(str(paths.root / "data" / "acme" / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT target, kind, partition, delivered, attempts, last_error, body FROM evidence.alerts ORDER BY 1"
        ).fetchall()


def test_a_blocked_period_is_alerted_once_per_target_whatever_the_target_answers(
    own_sources: tuple[ProjectPaths, Path], receivers: dict[str, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, sources = own_sources
    tenant = paths.root / "resources" / "tenants" / "acme.yaml"
    tenant.write_text(tenant.read_text() + TARGETS)
    made = barecount("sample-data", "--scale", "0.01", "--drift")
    assert made.returncode == 0, made.stdout + made.stderr
    period = json.loads((sources / "manifest.json").read_text())["scenarios"]["drift"]["period"]

    def run() -> tuple[int, str, str]:
        ran = barecount("run", "--period", period, "--select", "+raw/orders")
        return ran.returncode, ran.stdout, " ".join(ran.stderr.split())

    monkeypatch.setenv("TEST_OPS_URL", receivers["ops"].url)
    code, shown, said = run()
    assert code == 1 and f"erp.orders {period}" in said, said
    (alert,) = receivers["ops"].accepted
    assert (alert["kind"], alert["tenant"], alert["asset"], alert["period"]) == (
        "blocked",
        "acme",
        "raw/orders",
        period,
    )
    assert (alert["contract"], alert["contract_version"], alert["proposed_version"]) == ("erp.orders", "1.0.0", "2.0.0")
    assert "o_orderpriority renamed" in alert["reason"] and alert["links"]["run"].endswith(alert["run"])

    again = run()
    assert again[0] == 1 and receivers["ops"].requests == 1, "the same block is not alerted twice"

    monkeypatch.setenv("TEST_FLAKY_URL", receivers["flaky"].url)
    code, shown, _ = run()
    assert receivers["flaky"].requests == 3 and [a["key"] for a in receivers["flaky"].accepted] == [alert["key"]]
    assert receivers["ops"].requests == 1

    monkeypatch.setenv("TEST_SILENT_URL", receivers["silent"].url)
    silent = run()
    # the same outcome as the run before it, whose alerts were all delivered
    assert silent[0] == code == 1 and silent[1].splitlines()[-1] == shown.splitlines()[-1]
    assert "alert blocked raw/orders " + period + " not delivered to silent after 3 attempt(s)" in silent[2]
    rows = {str(row[0]): row[1:] for row in _alert_rows(paths)}
    assert rows["ops"][:4] == ("blocked", period, True, 1)
    assert rows["flaky"][:4] == ("blocked", period, True, 3) and rows["flaky"][4] is None
    assert rows["silent"][:4] == ("blocked", period, False, 3) and "no answer" in str(rows["silent"][4])
    assert TOKEN not in json.dumps([*rows.values(), silent]), "the webhook's URL (and its token) is never recorded"

    # status says what needs a person: the block with its proposal, and the alert that did not go out
    status = barecount("status", "--json")
    assert status.returncode == 1, status.stderr
    shown = json.loads(status.stdout)
    (orders,) = [a for a in shown["assets"] if a["asset"] == "raw/orders"]
    (block,) = orders["blocked"]
    assert (block["period"], block["proposal"]) == (period, "contracts/erp/orders/2.0.0.yaml")
    assert [(x["target"], x["kind"]) for x in shown["undelivered_alerts"]] == [("silent", "blocked")]
    assert any("approve or reject contracts/erp/orders/2.0.0.yaml" in line for line in shown["needs_a_person"])


def test_a_run_launched_outside_the_cli_is_alerted_by_the_sensor(
    own_sources: tuple[ProjectPaths, Path], receivers: dict[str, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run launched as the UI, a schedule or the approval sensor launch them (not by `barecount run`): the
    alert sensor's next tick posts its block, once."""
    paths, sources = own_sources
    tenant = paths.root / "resources" / "tenants" / "acme.yaml"
    tenant.write_text(tenant.read_text() + TARGETS)
    assert barecount("sample-data", "--scale", "0.01", "--drift").returncode == 0
    period = json.loads((sources / "manifest.json").read_text())["scenarios"]["drift"]["period"]
    monkeypatch.setenv("TEST_OPS_URL", receivers["ops"].url)
    defs = build_definitions(load_settings(paths))
    orders = dg.AssetKey(["acme", "raw", "orders"])
    upstream = dg.AssetSelection.assets(orders).upstream().resolve(defs.resolve_asset_graph())
    with open_instance(paths) as instance:
        sensor = defs.resolve_sensor_def(ALERT_SENSOR)

        def tick(cursor: str | None) -> tuple[str | None, str | None]:
            context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
            result = sensor(context)
            return context.cursor, result.skip_message if isinstance(result, dg.SkipReason) else None

        watching, said = tick(None)
        assert watching is not None and said == "watching runs that finish from now on"
        ran = defs.resolve_job_def(ALL_ASSETS_JOB).execute_in_process(
            instance=instance, partition_key=period, asset_selection=list(upstream), raise_on_error=False
        )
        assert not ran.success
        after, said = tick(watching)
        assert said == "1 alert(s) delivered"
        assert tick(after)[1] == "no finished run to alert about"
    (alert,) = receivers["ops"].accepted
    assert (alert["kind"], alert["period"], alert["run"]) == ("blocked", period, ran.run_id)

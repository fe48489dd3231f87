"""Which alerts a run's evidence raises, and the keys that keep them from being sent twice."""

from __future__ import annotations

from barecount.evidence.holds import BlockedPartition, FailedGate, RunHolds
from barecount.pipeline.alerts import alerts_of_run

BLOCK = BlockedPartition(
    "erp.orders", "1.0.0", "raw/orders", "FY1995-P04",
    [{"column": "o_comment", "change": "removed", "before": "o_comment", "after": None, "breaking": True}],
    "contracts/erp/orders/2.0.0.yaml", "run-1", "2026-12-07 10:00:00",
)  # fmt: skip
GATE = FailedGate("thresholds", "kpi/net_revenue", "FY1995-P04", "value 12 is above the maximum 10")


def _holds(blocked: list[BlockedPartition], failed: list[FailedGate]) -> RunHolds:
    return RunHolds(blocked=blocked, failed=failed, unpublished=[], waiting=[], unchanged={})


def test_a_block_and_a_failed_gate_are_alerted_and_keyed_by_what_happened() -> None:
    first = alerts_of_run("acme", "run-1", _holds([BLOCK], [GATE]), "periods held back")
    assert [(a.kind, a.asset, a.period) for a in first] == [
        ("blocked", "raw/orders", "FY1995-P04"),
        ("gate_failed", "kpi/net_revenue", "FY1995-P04"),
    ]
    assert (
        first[0].details["proposed_version"] == "2.0.0" and "approve contracts/erp/orders/2.0.0.yaml" in first[0].reason
    )
    body = first[1].body("http://ui")
    assert body["links"] == {"run": "http://ui/runs/run-1", "asset": "http://ui/assets/acme/kpi/net_revenue"}
    later = alerts_of_run("acme", "run-2", _holds([BLOCK], [GATE]), "periods held back")
    assert [a.key for a in later] == [a.key for a in first], "another run seeing the same thing: the same keys"
    other_org = alerts_of_run("globex", "run-2", _holds([BLOCK], []), "periods held back")
    assert other_org[0].key != first[0].key


def test_a_run_that_failed_for_another_reason_or_succeeded_is_one_alert() -> None:
    (failed,) = alerts_of_run("acme", "run-3", _holds([], []), "gdp/order_lines: division by zero")
    assert (failed.kind, failed.reason) == ("run_failed", "gdp/order_lines: division by zero")
    (succeeded,) = alerts_of_run("acme", "run-4", None, None)
    assert succeeded.kind == "run_succeeded" and succeeded.key != failed.key

"""What every launch path does once a run has ended: read what it held back from the evidence, and post the
alerts that evidence raises. `barecount run` and the service's runs share it (the UI's runs get theirs from
`alert_sensor`)."""

from __future__ import annotations

from barecount.config.profiles import Settings
from barecount.defs.resources import Warehouse
from barecount.defs.runner import RunOutcome
from barecount.evidence import holds
from barecount.pipeline.alerts import Alert, Delivery, alerts_of_run, deliver


def holds_of(warehouse: Warehouse, run_id: str) -> holds.RunHolds | None:
    """What a run held back, read-only; None before a first write."""
    if not warehouse.exists():
        return None
    with warehouse.get_connection(read_only=True) as conn:
        return holds.run_holds(conn, run_id)


def deliver_alerts(
    settings: Settings,
    warehouse: Warehouse,
    outcome: RunOutcome,
    said: holds.RunHolds | None,
    run_alerts: bool = True,
) -> list[Delivery]:
    """Post what the run's evidence says needs a person to the tenant's webhooks (none set: nothing to do). An
    alert not delivered is kept in the evidence for the next delivery, never a failure of the run. Without
    `run_alerts`, the run's own end (run_failed, run_succeeded) is left to the caller, which reports a whole
    pipeline run of several Dagster runs."""
    failure = None if outcome.success else (outcome.failure or "the run failed")
    alerts = alerts_of_run(settings.tenant.slug, outcome.run_id, said, failure)
    return post_alerts(settings, warehouse, [a for a in alerts if run_alerts or not a.kind.startswith("run_")])


def post_alerts(settings: Settings, warehouse: Warehouse, alerts: list[Alert]) -> list[Delivery]:
    """Post `alerts` to the tenant's webhooks that take them, each outcome in the evidence."""
    targets = settings.alert_targets()
    if not targets or not alerts or not warehouse.exists():
        return []
    with warehouse.get_connection() as conn:
        return deliver(conn, targets, alerts)

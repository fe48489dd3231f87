"""`apply_retention`: the tenant's retention rules applied from the UI's launchpad (or a schedule), exactly as
`barecount retention --apply` applies them (`barecount.pipeline.retention`)."""

from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from barecount.config.profiles import Settings
from barecount.contracts import ContractRegistry
from barecount.defs.resources import Warehouse
from barecount.pipeline.retention import contract_retention, delete_due, due_deletions

RETENTION_JOB = "apply_retention"


def build_retention_job(settings: Settings, streams: dict[str, str], tags: Mapping[str, str]) -> dg.JobDefinition:
    """One op that deletes what the rules no longer keep, each deletion on the ledger. `streams`: each partitioned
    stream's contract id (its contract may give a retention too)."""

    @dg.op(
        name="delete_expired_periods",
        description="Deletes the raw and quarantine periods the tenant's retention rules no longer keep; every "
        "deletion (table, period, rows) goes on the evidence ledger, and the evidence itself is never deleted. "
        "A stream's contract may keep its raw periods for less (ODCS slaProperties retention).",
        out=dg.Out(dg.Nothing),
    )
    def delete_expired_periods(
        context: dg.OpExecutionContext, warehouse: dg.ResourceParam[Warehouse]
    ) -> dg.Output[None]:
        rules, today = settings.tenant.retention, datetime.now(UTC).date()
        contracts = contract_retention(ContractRegistry.load(settings.paths), streams)
        with warehouse.get_connection() as conn:
            due = due_deletions(conn, settings.tenant.slug, settings.calendar, rules, list(streams), today, contracts)
            delete_due(conn, settings.tenant.slug, due, context.run_id)
        said = f"deleted {len(due)} period(s), {sum(d.rows for d in due):,} row(s)"
        context.log.info(said if rules or contracts else "no rule")
        return dg.Output(
            None,
            metadata={
                "periods_deleted": len(due),
                "rows_deleted": sum(d.rows for d in due),
                "deleted": ", ".join(f"{d.table} {d.period}" for d in due) or "none",
            },
        )

    @dg.job(
        name=RETENTION_JOB,
        description="Applies the tenant's retention rules (resources/tenants/<slug>.yaml).",
        tags=tags,
    )
    def apply_retention() -> None:
        delete_expired_periods()

    return apply_retention

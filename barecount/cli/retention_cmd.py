"""`barecount retention`: which raw and quarantine periods the tenant's retention rules no longer keep, and
(`--apply`) their deletion, each on the ledger."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths


def retention(
    apply: Annotated[bool, typer.Option("--apply", help="Delete them (default: only say what would go).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the periods of raw and quarantine tables that resources/tenants/<slug>.yaml: retention no longer keeps
    (keep_periods: the newest N with rows; keep_days: those that ended in the last N days), nor a stream's contract
    (ODCS slaProperties retention, for its raw table); with --apply, delete them, each table in one transaction
    with a ledger entry per period (table, period, rows). The evidence is never deleted. The `apply_retention` job
    in the UI does the same."""
    from barecount.catalog.loader import load_project_specs
    from barecount.config.profiles import load_settings
    from barecount.contracts import ContractRegistry
    from barecount.pipeline.retention import contract_retention, delete_due, due_deletions
    from barecount.warehouse.connection import warehouse_file

    settings = load_settings(ProjectPaths.discover())
    partitioned = [s.spec for s in load_project_specs(settings.paths).streams if s.spec.partitioned]
    streams = [s.name for s in partitioned]
    contracts = contract_retention(ContractRegistry.load(settings.paths), {s.name: s.contract for s in partitioned})
    rules = settings.tenant.retention
    warehouse = warehouse_file(settings)
    due = []
    if (rules or contracts) and warehouse.exists():
        with warehouse.get_connection(read_only=not apply) as conn:
            today = datetime.now(UTC).date()
            due = due_deletions(conn, settings.tenant.slug, settings.calendar, rules, streams, today, contracts)
            if apply and due:
                delete_due(conn, settings.tenant.slug, due, f"retention-{uuid.uuid4()}")
    listed = [{"table": d.table, "period": d.period, "rows": d.rows, "rule": d.rule} for d in due]
    if as_json:
        print_json({"applied": apply, "deletions": listed})
        return
    if not (rules or contracts):
        out.print(f"tenant {settings.tenant.slug} and its contracts declare no retention: every period is kept")
        return
    if not due:
        out.print("Nothing to delete: every period is within its layer's retention.")
        return
    table = Table("table", "period", "rows", "rule", title="Deleted" if apply else "Would delete (use --apply)")
    for item in listed:
        table.add_row(str(item["table"]), str(item["period"]), f"{item['rows']:,}", str(item["rule"]))
    out.print(table)
    total = sum(d.rows for d in due)
    verb = "Deleted" if apply else "Would delete"
    out.print(f"{verb} {len(due)} period(s), {total:,} row(s)" + ("; each on the ledger" if apply else ""))

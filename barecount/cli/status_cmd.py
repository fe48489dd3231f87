"""`barecount status`: one screen of where the warehouse stands, and whether a person is needed (exit 1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths
from barecount.errors import RefusedError


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
            help="Judge freshness as of this moment (UTC; default: now): the newest period due by then must have "
            "landed.",
        ),
    ] = None,
) -> None:
    """Per asset: the newest period built and the run that built it, freshness against the SLA (the newest period
    due: fresh, late or missing), checks whose newest verdict failed, periods blocked by drift with the proposal
    to approve, rows in quarantine; then alerts not delivered and the ledger's head. Exits 1 when something needs
    a person (a block, a failed or warning check, a missing period, an alert not delivered)."""
    from barecount.catalog.loader import load_project_specs
    from barecount.config.profiles import load_settings
    from barecount.contracts import ContractRegistry
    from barecount.evidence.status import warehouse_status
    from barecount.pipeline.gates.freshness import newest_due
    from barecount.warehouse.connection import warehouse_file

    settings = load_settings(ProjectPaths.discover())
    specs = load_project_specs(settings.paths)
    assets = specs.asset_refs() + [f"published/{k.spec.id}" for k in specs.kpis]  # type: ignore[union-attr]
    warehouse = warehouse_file(settings)
    if not warehouse.exists():
        raise RefusedError("nothing was built yet: run `barecount demo` or `barecount run` first")
    now = as_of.replace(tzinfo=UTC) if as_of else datetime.now(UTC)
    registry = ContractRegistry.load(settings.paths)
    due = {
        stream.asset_ref: found
        for stream in specs.streams
        if stream.spec.partitioned
        and (
            found := newest_due(
                settings.calendar,
                settings.partition_keys,
                lambda period, contract=stream.spec.contract: registry.in_force(contract, period).latency,
                now,
            )
        )
    }
    with warehouse.get_connection(read_only=True) as conn:
        found = warehouse_status(conn, assets, [s.spec.name for s in specs.streams], due)
    attention = found.attention()
    if as_json:
        print_json({"tenant": settings.tenant.slug, **found.as_dict()})
    else:
        columns = ("asset", "last period", "run", "built at (UTC)", "freshness", "failing checks", "blocked")
        title = f"Status of {settings.tenant.slug} as of {now:%Y-%m-%d %H:%M} UTC"
        table = Table(*columns, "quarantined", title=title)
        for item in found.assets:
            table.add_row(
                item.asset,
                item.last_period or ("snapshot" if item.last_run else "-"),
                (item.last_run or "-")[:8],
                (item.built_at or "-")[:19],
                _freshness_cell(item.freshness),
                f"[red]{len(item.failing_checks)}[/]" if item.failing_checks else "0",
                f"[red]{len(item.blocked)}[/]" if item.blocked else "0",
                f"{item.quarantined_rows:,}",
            )
        out.print(table)
        head = found.ledger_head
        out.print(f"Evidence ledger head: {head[0]}:{head[1]}" if head else "Evidence ledger: empty")
        for line in attention:
            out.print(f"[yellow]needs a person:[/] {line}", soft_wrap=True)
        if not attention:
            out.print("[green]Nothing needs a person.[/]")
    if attention:
        raise typer.Exit(1)


FRESHNESS_STYLE = {"fresh": "green", "late": "yellow", "missing": "red"}


def _freshness_cell(said: dict[str, str] | None) -> str:
    if said is None:
        return "-"
    return f"[{FRESHNESS_STYLE[said['verdict']]}]{said['verdict']}[/] {said['period']}"

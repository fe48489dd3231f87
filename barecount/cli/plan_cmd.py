"""`barecount plan`: what `barecount run` would build, for which periods and why, and what it would hold back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from barecount.cli.console import out, print_json
from barecount.cli.pipeline_cmd import ForceOption, FromOption, PeriodOption, SelectOption, ToOption
from barecount.config.project import ProjectPaths

if TYPE_CHECKING:
    from barecount.config.profiles import Settings
    from barecount.pipeline.plan import AssetPlan


def plan_of(settings: Settings, periods: list[str], select: list[str] | None, force: bool) -> list[AssetPlan]:
    """The plan of `barecount run` over `periods` with `--select` patterns `select`, read-only."""
    from barecount.defs.assembly import build_definitions
    from barecount.defs.runner import resolve_selection
    from barecount.pipeline.plan import plan_in_warehouse

    selection = resolve_selection(build_definitions(settings), select) if select else None
    return plan_in_warehouse(settings, periods, selection, force)


def plan(
    period: PeriodOption = None,
    start: FromOption = None,
    end: ToOption = None,
    select: SelectOption = None,
    force: ForceOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Say what `barecount run` with the same options would build, for which periods and why (new, extract
    changed, new contract version, code changed, an input rebuilt, late rows, forced), and what it would hold
    back (an extract that breaks its contract, an input held, a failed gate). Writes nothing."""
    from barecount.calendar import describe_periods
    from barecount.config.profiles import load_settings
    from barecount.pipeline.periods import resolve_periods

    settings = load_settings(ProjectPaths.discover())
    periods = resolve_periods(settings, period, start, end)
    plans = plan_of(settings, periods, select, force)
    if as_json:
        print_json([{"asset": p.asset, "build": p.build, "held": p.held, "unchanged": p.unchanged} for p in plans])
        return

    def shown(partitions: list[str | None]) -> str:
        dated = [k for k in partitions if k is not None]
        return describe_periods(dated) if dated else "snapshot"

    table = Table("asset", "builds", "why", title=f"Plan: {len(periods)} period(s) {periods[0]} .. {periods[-1]}")
    for item in plans:
        by_reason: dict[str, list[str | None]] = {}
        for key, why in item.build.items():
            by_reason.setdefault(why, []).append(key)
        for why, partitions in by_reason.items():
            table.add_row(item.asset, shown(partitions), why)
        held: dict[str, list[str | None]] = {}
        for key, why in item.held.items():
            held.setdefault(why, []).append(key)
        for why, partitions in held.items():
            table.add_row(item.asset, f"[red]held: {shown(partitions)}[/]", why)
        if not item.build and not item.held:
            table.add_row(item.asset, "[dim]-[/]", f"[dim]unchanged ({shown(item.unchanged)})[/]")
    out.print(table)
    building = sum(len(p.build) for p in plans)
    held_total = sum(len(p.held) for p in plans)
    out.print(
        f"{building} partition(s) to build, {held_total} held back, "
        f"{sum(len(p.unchanged) for p in plans)} unchanged. Nothing was run or written. "
        "A run also repairs periods whose rows were edited outside BareCount, and judges each KPI's gates."
    )

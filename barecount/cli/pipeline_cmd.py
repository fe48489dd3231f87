"""`barecount run` and `barecount demo`: materialize the graph for fiscal periods, in one run."""

from __future__ import annotations

import getpass
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.live import Live
from rich.table import Table

from barecount.cli.console import err, out
from barecount.cli.contracts_cmd import blocked_table
from barecount.config.project import ProjectPaths
from barecount.errors import BareCountError, RefusedError, UsageError
from barecount.pipeline.tags import BACKFILL_TAG, FORCE_TAG, REASON_TAG, REQUESTED_BY_TAG

# Dagster, DuckDB and the pipeline are imported where they are used: `barecount --help` and the commands
# that need no run import this module too (typer reads the signatures), and must stay quick.
if TYPE_CHECKING:
    import duckdb

    from barecount.config.profiles import Settings
    from barecount.defs.resources import DuckDBWarehouse
    from barecount.defs.runner import AssetOutcome, RunOutcome
    from barecount.evidence import holds

T = TypeVar("T")

STATUS_STYLE = {
    "pending": "dim",
    "running": "yellow",
    "retrying": "yellow",
    "done": "green",
    "failed": "red",
    "skipped": "dim",
}


def _progress_table(outcomes: dict[str, AssetOutcome], periods: int) -> Table:
    table = Table(title=f"Materializing {periods} fiscal period(s)", title_justify="left")
    table.add_column("asset")
    table.add_column("status")
    table.add_column("partitions", justify="right")
    table.add_column("rows", justify="right")
    for outcome in outcomes.values():
        style = STATUS_STYLE.get(outcome.status, "")
        table.add_row(outcome.asset, f"[{style}]{outcome.status}[/]", str(outcome.partitions), f"{outcome.rows:,}")
    return table


def _summary_table(outcome: RunOutcome, periods: list[str]) -> Table:
    span = periods[0] if len(periods) == 1 else f"{periods[0]} .. {periods[-1]}"
    table = Table(title=f"Run {outcome.run_id[:8]}: {len(periods)} period(s) {span}", title_justify="left")
    for column in ("asset", "status", "periods", "rows", "checks", "time (s)"):
        table.add_column(column, justify="left" if column in ("asset", "status", "checks") else "right")
    for item in outcome.assets.values():
        style = STATUS_STYLE.get(item.status, "")
        shown_periods = str(item.partitions) if item.partitions or item.held or item.unchanged else "-"
        if item.held:
            shown_periods += f" [yellow](+{item.held} held back)[/]"
        if item.unchanged:
            shown_periods += f" [dim](+{item.unchanged} unchanged)[/]"
        checks = ""
        if item.checks_passed or item.checks_failed:
            checks = f"{item.checks_passed} passed" + (
                f", [red]{item.checks_failed} failed[/]" if item.checks_failed else ""
            )
        table.add_row(
            item.asset, f"[{style}]{item.status}[/]", shown_periods, f"{item.rows:,}", checks, f"{item.seconds:.1f}"
        )
    total_rows = sum(a.rows for a in outcome.assets.values())
    table.add_section()
    table.add_row(
        "total",
        "ok" if outcome.success else "[red]failed[/]",
        str(len(periods)),
        f"{total_rows:,}",
        "",
        f"{outcome.seconds:.1f}",
    )
    return table


def _warehouse_table(settings: Settings) -> Table:
    """What the warehouse holds now, per asset: periods and rows (counted in the warehouse)."""
    from barecount.catalog.loader import load_project_specs
    from barecount.defs.assembly import build_warehouse

    specs = load_project_specs(settings.paths)
    partitioned = {s.asset_ref: s.spec.partitioned for s in specs.streams}
    partitioned |= {m.asset_ref: m.spec.partitioned for m in specs.models}  # type: ignore[union-attr]
    table = Table(title=f"Warehouse {settings.paths.relative(Path(settings.warehouse_path))}", title_justify="left")
    for column in ("asset", "periods", "rows"):
        table.add_column(column, justify="left" if column == "asset" else "right")
    with build_warehouse(settings).get_connection(read_only=True) as conn:
        for ref in specs.asset_refs():
            name = ref.replace("/", ".")
            if partitioned.get(ref, True):
                periods, rows = conn.execute(f"SELECT count(DISTINCT fiscal_period), count(*) FROM {name}").fetchone()  # type: ignore[misc]
            else:
                periods, rows = "-", conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]
            table.add_row(ref, str(periods), f"{rows:,}")
    return table


def _evidence_of(
    warehouse: DuckDBWarehouse, run_id: str, read: Callable[[duckdb.DuckDBPyConnection, str], list[T]]
) -> list[T]:
    """What the evidence says about one run (failed gates, blocks), read-only; nothing before a first write."""
    if not Path(warehouse.database).exists():
        return []
    with warehouse.get_connection(read_only=True) as conn:
        return read(conn, run_id)


def _gates_problem(failed: list[holds.FailedGate]) -> str:
    """Show the failed gates; say which partitions they held back."""
    table = Table("asset", "period", "gate", "why", title="Held back: failed gates")
    for gate in failed:
        table.add_row(gate.asset, gate.partition or "snapshot", gate.gate, gate.detail)
    out.print(table)
    return f"{len(failed)} partition(s) failed a gate and were held back: " + "; ".join(
        f"{g.asset} {g.partition or 'snapshot'} ({g.gate})" for g in failed
    )


@dataclass
class Executed:
    """What `execute` did: its runs, and the periods it found unchanged (work done before, nothing rewritten)."""

    outcomes: list[RunOutcome]
    periods: int
    unchanged: dict[str, list[str]]
    """Period -> the runs that built it, for the periods whose every partition was done before."""

    @property
    def up_to_date(self) -> bool:
        return len(self.unchanged) == self.periods


def execute(
    settings: Settings,
    periods: list[str],
    selection: list[str] | None,
    force: bool,
    tags: dict[str, str] | None = None,
) -> Executed:
    """Launch one run per contiguous range of the periods (tagged with `tags`), with live progress, and report
    from the runs' own record. The runs decide what is already done, whatever launches them; a failed run
    is exit 1."""
    from barecount.catalog.loader import load_project_specs
    from barecount.config.instance import open_instance
    from barecount.defs.assembly import build_definitions, build_warehouse
    from barecount.defs.runner import resolve_selection, run_partitions
    from barecount.evidence import holds, ledger
    from barecount.pipeline.connectors import SourceFiles
    from barecount.pipeline.periods import contiguous_ranges
    from barecount.sql.pii import check_masking_keys

    specs = load_project_specs(settings.paths)
    defs = build_definitions(settings, specs)
    selection = resolve_selection(defs, selection) if selection else None
    selected = selection or specs.asset_refs()
    warehouse = build_warehouse(settings)
    sources = SourceFiles(root=str(settings.sources_dir))
    for stream in specs.streams:  # a missing extract is bad usage (exit 2), before anything runs
        if stream.asset_ref in selected:
            sources.files_for(stream.spec, periods if stream.spec.partitioned else None)
    check_masking_keys(specs.masking(selected))  # and so is a key the run would miss after minutes of work
    instance = open_instance(settings.paths)
    run_tags = (tags or {}) | ({FORCE_TAG: "true"} if force else {})
    outcomes: list[RunOutcome] = []
    blocked: list[holds.BlockedPartition] = []
    failed: list[holds.FailedGate] = []
    unpublished: list[tuple[str, str, str]] = []
    waiting: list[tuple[str, holds.BlockedPartition]] = []
    unchanged: dict[str, list[str]] = {}
    for chunk in contiguous_ranges(periods, settings.partition_keys):
        with Live(_progress_table({}, len(chunk)), console=out, transient=True, refresh_per_second=4) as live:

            def show(outcomes: dict[str, AssetOutcome], live: Live = live, periods: int = len(chunk)) -> None:
                live.update(_progress_table(outcomes, periods))

            outcome = run_partitions(defs, instance, chunk, selection=selection, tags=run_tags, on_progress=show)
        out.print(_summary_table(outcome, chunk))
        if not outcome.success:
            stopped_by = _evidence_of(warehouse, outcome.run_id, holds.failed_gates)
            if stopped_by:  # every period of a gate failed: Dagster stops the steps after it
                raise RefusedError(f"run {outcome.run_id} stopped: {_gates_problem(stopped_by)}")
            # a stream whose every period drifted fails its step; the blocks are reported below
            if not _evidence_of(warehouse, outcome.run_id, holds.open_blocks):
                raise RefusedError(f"run {outcome.run_id} failed: {outcome.failure}")
        with warehouse.get_connection(read_only=True) as conn:
            blocked += holds.open_blocks(conn, outcome.run_id)
            failed += holds.failed_gates(conn, outcome.run_id)
            unpublished += holds.unpublished(conn, outcome.run_id)
            # blocked by an earlier run: this run's own blocks are reported as blocks
            waiting += [
                (asset, block)
                for asset, block in holds.waiting_for_approval(conn, outcome.run_id)
                if block.run_id != outcome.run_id
            ]
            unchanged |= holds.unchanged_in_run(conn, outcome.run_id)
        outcomes.append(outcome)
    if unchanged:
        by_run = ", ".join(f"run {run_id[:8]}" for run_id in dict.fromkeys(r for rs in unchanged.values() for r in rs))
        out.print(
            f"{len(unchanged)} of {len(periods)} period(s) unchanged since their last build "
            f"(inputs and code alike), built by {by_run}: nothing rewritten. Use --force to rebuild them."
        )
    with warehouse.get_connection(read_only=True) as conn:
        kept = ledger.head(conn)
    if kept:
        out.print(f"Evidence ledger head: {kept[0]}:{kept[1]} (keep it to verify later)")
    problems = []
    if failed:
        problems.append(_gates_problem(failed))
    if unpublished:
        table = Table("asset", "period", "why", title="Not published")
        for asset, period, why in unpublished:
            table.add_row(asset, period, why)
        out.print(table)
        problems.append(
            f"{len(unpublished)} KPI partition(s) not published: "
            + "; ".join(f"{asset} {period}" for asset, period, _ in unpublished)
        )
    if blocked:
        out.print(blocked_table(blocked, "Blocked by schema drift in this run"))
        problems.append(
            f"{len(blocked)} period(s) blocked by schema drift: "
            + "; ".join(f"{b.contract} {b.fiscal_period or 'snapshot'} ({b.describe()})" for b in blocked)
            + ". Nothing of their extracts landed; their previous rows are kept. "
            + "Review the proposed version(s): "
            + ", ".join(sorted({b.proposal for b in blocked}))
        )
    if waiting:
        table = Table("asset", "period", "blocked by", "waits for", title="Waiting for a contract approval")
        for asset, block in waiting:
            table.add_row(asset, block.fiscal_period or "snapshot", f"{block.contract} {block.contract_version}",
                          block.proposal)  # fmt: skip
        out.print(table)
        problems.append(
            f"{len(waiting)} partition(s) not built while their sources are blocked: "
            + "; ".join(f"{asset} {block.fiscal_period} ({block.waiting_reason()})" for asset, block in waiting)
        )
    if problems:
        raise RefusedError(". ".join(problems))
    return Executed(outcomes, len(periods), unchanged)


SelectOption = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        metavar="ASSET",
        help="Assets to run (repeatable): a key (gdp/order_lines), a glob (kpi/*), group:raw, +KEY for it and "
        "everything upstream, KEY+ for downstream.",
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Rebuild partitions even if their inputs did not change.")]


def run(
    period: Annotated[
        str | None, typer.Option("--period", metavar="PERIOD", help="One fiscal period, e.g. FY1995-P03.")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", metavar="PERIOD", help="First period of a range.")] = None,
    end: Annotated[str | None, typer.Option("--to", metavar="PERIOD", help="Last period of a range.")] = None,
    select: SelectOption = None,
    force: ForceOption = False,
) -> None:
    """Materialize assets for fiscal periods (default: every period with source data) in one run."""
    from barecount.config.profiles import load_settings
    from barecount.pipeline.periods import resolve_periods

    settings = load_settings(ProjectPaths.discover())
    periods = resolve_periods(settings, period, start, end)
    execute(settings, periods, select, force)


def backfill(
    start: Annotated[str, typer.Option("--from", metavar="PERIOD", help="First period of the range.")],
    end: Annotated[str, typer.Option("--to", metavar="PERIOD", help="Last period of the range.")],
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why the periods are rebuilt, for the record.")
    ],
    by: Annotated[
        str | None, typer.Option("--by", metavar="NAME", help="Who asks for it (default: the current user).")
    ] = None,
    select: SelectOption = None,
    force: ForceOption = False,
) -> None:
    """A governed backfill: rebuild a range of periods for a stated reason. Who asked, the range, the reason,
    the runs and the outcome go into the evidence ledger."""
    import dagster as dg

    from barecount.config.instance import open_instance
    from barecount.config.profiles import load_settings
    from barecount.defs.assembly import build_warehouse
    from barecount.evidence.backfills import BackfillRecord, record_backfill
    from barecount.pipeline.periods import resolve_periods

    if not reason.strip():
        raise UsageError("--reason: say why the periods are rebuilt (it goes on the record)")
    settings = load_settings(ProjectPaths.discover())
    periods = resolve_periods(settings, None, start, end)
    record = BackfillRecord(
        backfill_id=f"backfill-{uuid.uuid4().hex[:12]}",
        requested_by=by or getpass.getuser(),
        reason=reason,
        first_period=periods[0],
        last_period=periods[-1],
        periods=len(periods),
        selection=select or [],
        launched_from="cli",
    )
    warehouse = build_warehouse(settings)
    with warehouse.get_connection() as conn:
        record_backfill(conn, record, "requested")
    tags = {BACKFILL_TAG: record.backfill_id, REASON_TAG: reason, REQUESTED_BY_TAG: record.requested_by}

    def runs() -> list[tuple[str, str]]:
        with open_instance(settings.paths) as instance:
            found = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_TAG: record.backfill_id}))
        return [(r.run_id, r.status.value) for r in reversed(found)]

    try:
        execute(settings, periods, select, force, tags)
    except BareCountError as exc:
        with warehouse.get_connection() as conn:
            record_backfill(conn, record, "failed", runs(), str(exc))
        raise
    with warehouse.get_connection() as conn:
        record_backfill(conn, record, "succeeded", runs())
    out.print(f"Backfill {record.backfill_id} by {record.requested_by} ({reason}) is on the record.")


def demo(
    scale: Annotated[float, typer.Option("--scale", help="TPC-H scale factor of the sample data.")] = 0.1,
    force: Annotated[bool, typer.Option("--force", help="Regenerate the sample data even if it matches.")] = False,
) -> None:
    """Make sample data if needed, materialize every asset for every sample period, and summarise."""
    from barecount.config.profiles import load_settings
    from barecount.devtools.sample_data import generate_sample_data, read_manifest
    from barecount.pipeline.periods import resolve_periods

    settings = load_settings(ProjectPaths.discover())
    sources = settings.sources_dir
    manifest = read_manifest(sources)
    if (
        force
        or manifest is None
        or manifest.scale != scale
        or manifest.scenarios.any
        or (manifest.calendar != settings.calendar.name)
    ):
        reason = "forced" if force else "missing" if manifest is None else "different"
        out.print(f"Sample data ({reason}): generating TPC-H SF{scale:g} into {settings.paths.relative(sources)} …")
        with err.status("generating sample data") as status:
            generate_sample_data(
                sources,
                scale,
                seed=0,
                calendar=settings.calendar,
                progress=lambda message: status.update(message),
            )
    else:
        out.print(f"Sample data: TPC-H SF{scale:g} already in {settings.paths.relative(sources)}")
    periods = resolve_periods(settings, None, None, None)
    started = time.monotonic()
    if execute(settings, periods, None, force).up_to_date:
        out.print(_warehouse_table(settings))
        headline = "[green]Up to date[/]"
    else:
        headline = f"[green]Done[/] in {time.monotonic() - started:.1f} s"
    warehouse = settings.paths.relative(Path(settings.warehouse_path))
    out.print(
        f"\n{headline}: warehouse {warehouse}.\n"
        'Look at the numbers:  barecount query "SELECT * FROM kpi.net_revenue ORDER BY fiscal_period"\n'
        "Open the Dagster UI:  make ui  (or `barecount ui`), then http://127.0.0.1:3000",
        soft_wrap=True,
    )

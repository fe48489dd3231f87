"""`barecount run` and `barecount demo`: materialize the graph for fiscal periods, in one run."""

from __future__ import annotations

import getpass
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live
from rich.table import Table

from barecount.cli.console import err, out
from barecount.cli.contracts_cmd import blocked_table
from barecount.config.project import ProjectPaths
from barecount.errors import BareCountError, RefusedError, SpecErrors, UsageError
from barecount.pipeline.tags import BACKFILL_TAG, FORCE_TAG, REASON_TAG, REQUESTED_BY_TAG

# Dagster, DuckDB and the pipeline are imported where they are used: `barecount --help` and the commands
# that need no run import this module too (typer reads the signatures), and must stay quick.
if TYPE_CHECKING:
    from barecount.config.profiles import Settings
    from barecount.defs.resources import Warehouse
    from barecount.defs.runner import AssetOutcome, RunOutcome
    from barecount.evidence import holds


STATUS_STYLE = {
    "pending": "dim",
    "running": "yellow",
    "retrying": "yellow",
    "done": "green",
    "failed": "red",
    "held": "red",
    "skipped": "dim",
}


VERDICTS = ("passed", "warned", "failed", "held", "skipped", "unchanged")
"""What each asset of a run came to, in the order the summary counts them; failed, held and skipped are exit 1."""
VERDICT_STYLE = {"passed": "green", "warned": "yellow", "failed": "red", "held": "red", "skipped": "red"}


class Verbosity(IntEnum):
    QUIET = -1
    NORMAL = 0
    VERBOSE = 1


def verdict_of(item: AssetOutcome) -> str:
    if item.status == "failed":
        return "failed"
    if item.status in ("skipped", "pending"):
        return "skipped"
    if item.held:
        return "held"
    if item.checks_failed:
        return "failed"
    if item.quarantined or item.checks_warned:
        return "warned"
    if item.unchanged and not item.partitions:
        return "unchanged"
    return "passed"


def _periods_text(item: AssetOutcome) -> str:
    shown = str(item.partitions) if item.partitions or item.held or item.unchanged else "-"
    if item.held:
        shown += f" (+{item.held} held back)"
    if item.unchanged:
        shown += f" (+{item.unchanged} unchanged)"
    return shown


def _checks_text(item: AssetOutcome) -> str:
    if not (item.checks_passed or item.checks_failed or item.checks_warned):
        return ""
    failed = f", {item.checks_failed} failed" if item.checks_failed else ""
    return f"{item.checks_passed} passed{failed}" + (f", {item.checks_warned} warned" if item.checks_warned else "")


def asset_line(item: AssetOutcome) -> str:
    """One asset as it finishes, for logs and pipes: verdict, asset, periods, rows, time, checks."""
    verdict = verdict_of(item)
    quarantined = f", {item.quarantined:,} quarantined" if item.quarantined else ""
    checks = _checks_text(item)
    return (
        f"{verdict.upper():<9} {item.asset:<34} periods {_periods_text(item):<14} "
        f"rows {item.rows:>10,}{quarantined}  {item.seconds:5.1f} s" + (f"  checks {checks}" if checks else "")
    )


def summary_line(assets: list[AssetOutcome], ok: bool) -> str:
    """The run's last line: each verdict's count and the total, headed by what the exit code says."""
    counts = {v: 0 for v in VERDICTS}
    for item in assets:
        counts[verdict_of(item)] += 1
    shown = " ".join(f"{v.upper()}={n}" for v, n in counts.items())
    return f"{'Done' if ok else 'Failed'}. {shown} TOTAL={len(assets)}"


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
        verdict = verdict_of(item)
        style = VERDICT_STYLE.get(verdict, "")
        table.add_row(
            item.asset,
            f"[{style}]{verdict}[/]" if style else verdict,
            _periods_text(item),
            f"{item.rows:,}",
            _checks_text(item),
            f"{item.seconds:.1f}",
        )
    total_rows = sum(a.rows for a in outcome.assets.values())
    table.add_section()
    bad = any(verdict_of(a) in ("failed", "held", "skipped") for a in outcome.assets.values())
    table.add_row(
        "total",
        "[red]failed[/]" if bad or not outcome.success else "ok",
        str(len(periods)),
        f"{total_rows:,}",
        "",
        f"{outcome.seconds:.1f}",
    )
    return table


def _warehouse_table(settings: Settings) -> Table:
    """What the warehouse holds now, per asset: periods and rows (counted in the warehouse)."""
    from barecount.catalog.loader import load_project_specs
    from barecount.defs.resources import build_warehouse

    specs = load_project_specs(settings.paths)
    partitioned = {s.asset_ref: s.spec.partitioned for s in specs.streams}
    partitioned |= {m.asset_ref: m.spec.partitioned for m in specs.models}  # type: ignore[union-attr]
    table = Table(title=f"Warehouse {settings.warehouse_shown}", title_justify="left")
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


def _alert(settings: Settings, warehouse: Warehouse, outcome: RunOutcome, said: holds.RunHolds | None) -> None:
    """Post the run's alerts; say each one not delivered (it is kept in the evidence for the next delivery)."""
    from barecount.defs.aftermath import deliver_alerts

    deliveries = deliver_alerts(settings, warehouse, outcome, said)
    for item in deliveries:
        if not item.delivered:
            where = f" {item.alert.asset} {item.alert.period or ''}".rstrip() if item.alert.asset else ""
            err.print(
                f"alert {item.alert.kind}{where} not delivered to {item.target} after {item.attempts} attempt(s): "
                f"{item.error} (kept in evidence.alerts; the next run tries again)",
                soft_wrap=True,
                markup=False,
            )


def _grouped(partitions: list[tuple[str, str | None, str]]) -> str:
    """`asset periods (note)` per asset and note, the periods as ranges: a long run names hundreds at once."""
    from barecount.calendar import describe_periods

    by_asset: dict[tuple[str, str], list[str | None]] = {}
    for asset, period, note in partitions:
        by_asset.setdefault((asset, note), []).append(period)
    return "; ".join(
        f"{asset} {describe_periods(p for p in periods if p is not None) or 'snapshot'}"
        + (f" ({note})" if note else "")
        for (asset, note), periods in by_asset.items()
    )


def _gates_table(title: str, gates: list[holds.FailedGate]) -> Table:
    """Gates that failed, one row per asset and period: those that held a period back, or only warned."""
    table = Table("asset", "period", "gate", "why", title=title)
    for gate in gates:
        table.add_row(gate.asset, gate.partition or "snapshot", gate.gate, gate.detail)
    return table


def _problems(
    blocked: list[holds.BlockedPartition],
    failed: list[holds.FailedGate],
    unpublished: list[tuple[str, str, str]],
    waiting: list[tuple[str, holds.BlockedPartition]],
) -> tuple[list[Table], list[str]]:
    """What the runs held back: a table for people and a sentence for the error, per kind."""
    tables, said = [], []
    if failed:
        tables.append(_gates_table("Held back: failed gates", failed))
        said.append(
            f"{len(failed)} partition(s) failed a gate and were held back: "
            + _grouped([(g.asset, g.partition, g.gate) for g in failed])
        )
    if unpublished:
        table = Table("asset", "period", "why", title="Not published")
        for asset, period, why in unpublished:
            table.add_row(asset, period, why)
        tables.append(table)
        said.append(
            f"{len(unpublished)} KPI partition(s) not published: "
            + _grouped([(asset, period, "") for asset, period, _ in unpublished])
        )
    if blocked:
        tables.append(blocked_table(blocked, "Blocked by schema drift in this run"))
        said.append(
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
        tables.append(table)
        said.append(
            f"{len(waiting)} partition(s) not built while their sources are blocked: "
            + _grouped([(asset, block.fiscal_period, block.waiting_reason()) for asset, block in waiting])
        )
    return tables, said


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
    verbosity: Verbosity = Verbosity.NORMAL,
) -> Executed:
    """Launch one run per contiguous range of the periods (tagged with `tags`), with progress, and report from
    the runs' own record. The runs decide what is already done, whatever launches them; a failed run is exit 1.

    On a terminal, a live table shows each asset; off one (a pipe, a log, CI) or with `--verbose`, one line per
    asset as it finishes. Every run ends with one line counting the assets by verdict, headed Done or Failed
    as the exit code says. `--quiet` prints that line alone, and the error."""
    from barecount.catalog.loader import load_project_specs
    from barecount.config.instance import open_instance
    from barecount.defs.aftermath import holds_of
    from barecount.defs.assembly import build_definitions
    from barecount.defs.resources import build_warehouse
    from barecount.defs.runner import resolve_selection, run_partitions
    from barecount.evidence import ledger
    from barecount.pipeline.connectors import SourceFiles
    from barecount.pipeline.periods import contiguous_ranges
    from barecount.pipeline.sources import Sources, source_problems
    from barecount.sql.pii import check_masking_keys

    specs = load_project_specs(settings.paths)
    defs = build_definitions(settings, specs)
    selection = resolve_selection(defs, selection) if selection else None
    selected = selection or specs.asset_refs()
    warehouse = build_warehouse(settings)
    problems = source_problems(specs, settings.on_bigquery)
    if problems:  # a source the profile cannot read is bad usage (exit 2), before anything runs
        raise SpecErrors(problems)
    sources = Sources(SourceFiles(root=str(settings.sources_dir)), settings.calendar)
    for stream in specs.streams:  # and so is a missing extract
        if stream.asset_ref in selected:
            sources.check_present(stream.spec, periods if stream.spec.partitioned else None)
    check_masking_keys(specs.masking(selected))  # and so is a key the run would miss after minutes of work
    instance = open_instance(settings.paths)
    run_tags = (tags or {}) | ({FORCE_TAG: "true"} if force else {})
    live_table = verbosity == Verbosity.NORMAL and out.is_terminal
    line_by_line = verbosity == Verbosity.VERBOSE or (verbosity == Verbosity.NORMAL and not out.is_terminal)

    def say(shown: object) -> None:
        if verbosity > Verbosity.QUIET:
            out.print(shown, soft_wrap=True)

    outcomes: list[RunOutcome] = []
    blocked: list[holds.BlockedPartition] = []
    failed: list[holds.FailedGate] = []
    unpublished: list[tuple[str, str, str]] = []
    waiting: list[tuple[str, holds.BlockedPartition]] = []
    warned: list[holds.FailedGate] = []
    unchanged: dict[str, list[str]] = {}

    def finish(ok: bool) -> None:
        out.print(summary_line([a for o in outcomes for a in o.assets.values()], ok), soft_wrap=True)

    for chunk in contiguous_ranges(periods, settings.partition_keys):
        printed: set[str] = set()
        if line_by_line:
            say(f"Materializing {len(chunk)} period(s) {chunk[0]} .. {chunk[-1]}")
        live = Live(_progress_table({}, len(chunk)), console=out, transient=True, refresh_per_second=4)
        with live if live_table else nullcontext():

            def show(
                found: dict[str, AssetOutcome],
                periods: int = len(chunk),
                printed: set[str] = printed,
                live: Live = live,
            ) -> None:
                if live_table:
                    live.update(_progress_table(found, periods))
                for item in found.values() if line_by_line else ():
                    if item.finished and item.asset not in printed:
                        printed.add(item.asset)
                        out.print(asset_line(item), markup=False, soft_wrap=True, highlight=False)

            outcome = run_partitions(defs, instance, chunk, selection=selection, tags=run_tags, on_progress=show)
        outcomes.append(outcome)
        if not line_by_line:
            say(_summary_table(outcome, chunk))
        said = holds_of(warehouse, outcome.run_id)
        _alert(settings, warehouse, outcome, said)
        # periods held back fail the run, so that Dagster shows them as failed: the evidence says which and why;
        # a run that failed with nothing held back failed for another reason, which it names
        if not outcome.success and not said:
            finish(ok=False)
            raise RefusedError(f"run {outcome.run_id} failed: {outcome.failure}")
        if said is not None:
            blocked += said.blocked
            failed += said.failed
            unpublished += said.unpublished
            waiting += said.waiting
            warned += said.warned
            unchanged |= said.unchanged
    if unchanged:
        by_run = ", ".join(f"run {run_id[:8]}" for run_id in dict.fromkeys(r for rs in unchanged.values() for r in rs))
        say(
            f"{len(unchanged)} of {len(periods)} period(s) unchanged since their last build "
            f"(inputs and code alike), built by {by_run}: nothing rewritten. Use --force to rebuild them."
        )
    with warehouse.get_connection(read_only=True) as conn:
        kept = ledger.head(conn)
    if kept:
        say(f"Evidence ledger head: {kept[0]}:{kept[1]} (keep it to verify later)")
    tables, problems = _problems(blocked, failed, unpublished, waiting)
    if warned:
        tables.insert(0, _gates_table("Warnings: built and published all the same", warned))
    for table in tables:
        say(table)
    finish(ok=not problems)
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
PeriodOption = Annotated[
    str | None, typer.Option("--period", metavar="PERIOD", help="One fiscal period, e.g. FY1995-P03.")
]
FromOption = Annotated[str | None, typer.Option("--from", metavar="PERIOD", help="First period of a range.")]
ToOption = Annotated[str | None, typer.Option("--to", metavar="PERIOD", help="Last period of a range.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Rebuild partitions even if their inputs did not change.")]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only the last line (the count of each verdict) and errors.")
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="One line per asset as it finishes, also on a terminal.")
]


def verbosity_of(quiet: bool, verbose: bool) -> Verbosity:
    if quiet and verbose:
        raise UsageError("use either --quiet or --verbose, not both")
    return Verbosity.QUIET if quiet else Verbosity.VERBOSE if verbose else Verbosity.NORMAL


def run(
    period: PeriodOption = None,
    start: FromOption = None,
    end: ToOption = None,
    select: SelectOption = None,
    force: ForceOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Materialize assets for fiscal periods (default: every period with source data) in one run."""
    from barecount.config.profiles import load_settings
    from barecount.pipeline.periods import resolve_periods

    level = verbosity_of(quiet, verbose)
    settings = load_settings(ProjectPaths.discover())
    periods = resolve_periods(settings, period, start, end)
    execute(settings, periods, select, force, verbosity=level)


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
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """A governed backfill: rebuild a range of periods for a stated reason. Who asked, the range, the reason,
    the runs and the outcome go into the evidence ledger."""
    import dagster as dg

    from barecount.config.instance import open_instance
    from barecount.config.profiles import load_settings
    from barecount.defs.resources import build_warehouse
    from barecount.evidence.backfills import BackfillRecord, record_backfill
    from barecount.pipeline.periods import resolve_periods

    if not reason.strip():
        raise UsageError("--reason: say why the periods are rebuilt (it goes on the record)")
    settings = load_settings(ProjectPaths.discover())
    periods = resolve_periods(settings, None, start, end)
    level = verbosity_of(quiet, verbose)
    _say_what_a_backfill_rebuilds(settings, periods, select, force, level)
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
        execute(settings, periods, select, force, tags, level)
    except BareCountError as exc:
        with warehouse.get_connection() as conn:
            record_backfill(conn, record, "failed", runs(), str(exc))
        raise
    with warehouse.get_connection() as conn:
        record_backfill(conn, record, "succeeded", runs())
    out.print(f"Backfill {record.backfill_id} by {record.requested_by} ({reason}) is on the record.")


def _say_what_a_backfill_rebuilds(
    settings: Settings, periods: list[str], select: list[str] | None, force: bool, level: Verbosity
) -> None:
    """What the backfill will rebuild, from the plan; a backfill that would rebuild nothing is refused (exit 2)
    before anything goes on the record, unless forced."""
    from barecount.calendar import describe_periods
    from barecount.cli.plan_cmd import plan_of

    plans = plan_of(settings, periods, select, force)
    rebuilt = {p.asset: p.build for p in plans if p.build}
    if not rebuilt:
        held = sum(len(p.held) for p in plans)
        waiting = f"; {held} partition(s) stay held back (`barecount plan` says why)" if held else ""
        raise UsageError(
            f"nothing to rebuild in {describe_periods(periods)}: every partition is unchanged since its last build"
            f"{waiting}. Add --force to rebuild them anyway"
        )
    if level > Verbosity.QUIET:
        partitions = sum(len(b) for b in rebuilt.values())
        out.print(
            f"The backfill rebuilds {partitions} partition(s) of {len(rebuilt)} asset(s): "
            + "; ".join(
                f"{a} {describe_periods(k for k in b if k is not None) or 'snapshot'}" for a, b in rebuilt.items()
            ),
            soft_wrap=True,
        )


def demo(
    scale: Annotated[float, typer.Option("--scale", help="TPC-H scale factor of the sample data.")] = 0.1,
    force: Annotated[bool, typer.Option("--force", help="Regenerate the sample data even if it matches.")] = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
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
        or manifest.seed != settings.tenant.sample_data.seed
    ):
        reason = "forced" if force else "missing" if manifest is None else "different"
        out.print(f"Sample data ({reason}): generating TPC-H SF{scale:g} into {settings.paths.relative(sources)} …")
        with err.status("generating sample data") as status:
            generate_sample_data(
                sources,
                scale,
                seed=settings.tenant.sample_data.seed,
                calendar=settings.calendar,
                progress=lambda message: status.update(message),
            )
    else:
        out.print(f"Sample data: TPC-H SF{scale:g} already in {settings.paths.relative(sources)}")
    periods = resolve_periods(settings, None, None, None)
    started = time.monotonic()
    if execute(settings, periods, None, force, verbosity=verbosity_of(quiet, verbose)).up_to_date:
        out.print(_warehouse_table(settings))
        headline = "[green]Up to date[/]"
    else:
        headline = f"[green]Done[/] in {time.monotonic() - started:.1f} s"
    out.print(
        f"\n{headline}: warehouse {settings.warehouse_shown}.\n"
        'Look at the numbers:  barecount query "SELECT * FROM kpi.net_revenue ORDER BY fiscal_period"\n'
        "Open the Dagster UI:  make ui  (or `barecount ui`), then http://127.0.0.1:3000",
        soft_wrap=True,
    )

"""`barecount ledger …`: read and verify the evidence ledger."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths
from barecount.errors import RefusedError, UsageError

if TYPE_CHECKING:
    from barecount.evidence import ledger
    from barecount.evidence.trace import TraceNode
    from barecount.warehouse.connection import WarehouseFile

app = typer.Typer(
    help="The evidence ledger: show entries, trace a partition to its sources, print the head, verify the chain.",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
WHO_FACTS = ("decided_by", "requested_by", "approved_by")
"""Facts naming a person: who decided on a contract version, asked for a backfill, approved what a run resumed."""
WHY_FACTS = ("reason", "note")


def _warehouse() -> WarehouseFile:
    from barecount.config.profiles import load_settings
    from barecount.warehouse.connection import warehouse_file

    return warehouse_file(load_settings(ProjectPaths.discover()))


def _entries(asset: str | None = None, partition: str | None = None) -> list[ledger.LedgerEntry]:
    from barecount.evidence import ledger

    try:
        with _warehouse().get_connection(read_only=True) as conn:
            return ledger.read_entries(conn, asset, partition)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None


@app.command("show")
def show(
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset, e.g. raw/orders.")] = None,
    partition: Annotated[
        str | None, typer.Option("--partition", metavar="PERIOD", help="Only this fiscal period.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest N entries (0: all).")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Ledger entries, oldest first: when each was recorded, what it is, who asked for it and why (where it
    says), and what was written, with which counts and versions. --json prints the entries as stored."""
    entries = _entries(asset, partition)
    if limit:
        entries = entries[-limit:]
    if as_json:
        print_json([e.as_dict() for e in entries])
        return
    table = Table(
        "seq", "when (UTC)", "kind", "asset", "partition", "who", "why", "rows", "version", "hash",
        title="Evidence ledger",
    )  # fmt: skip
    for e in entries:
        f = e.facts
        rows = f"{f.get('rows_landed', '')}"
        if "rows_in" in f:
            rows = f"{f['rows_in']} in, {f['rows_landed']} landed, {f['rows_quarantined']} quarantined"
        version = f.get("contract_version") or f.get("kpi_version") or f.get("code_version") or ""
        table.add_row(
            str(e.seq),
            e.recorded_at[:19].replace("T", " "),  # to the second; text as stored, even in an edited entry
            _kind(e),
            e.asset,
            e.partition or "-",
            escape(_first_fact(f, WHO_FACTS)),
            escape(_why(e)),
            rows,
            str(version),
            e.entry_hash[:12],
        )
    out.print(table)


def _first_fact(facts: Mapping[str, Any], names: tuple[str, ...]) -> str:
    return next((str(facts[n]) for n in names if facts.get(n)), "")


def _kind(entry: ledger.LedgerEntry) -> str:
    """The kind, and for a check which one and its outcome."""
    if entry.kind != "check":
        return entry.kind
    mark = "[green]✓[/]" if entry.facts.get("passed") else "[red]✗[/]"
    return f"check {mark} {escape(str(entry.facts.get('check', '')))}"


def _why(entry: ledger.LedgerEntry) -> str:
    """The reason or note the entry records; for a failed check, what failed."""
    if entry.kind == "check" and not entry.facts.get("passed"):
        return str(entry.facts.get("detail", ""))
    return _first_fact(entry.facts, WHY_FACTS)


@app.command("head")
def head(as_json: JsonOption = False) -> None:
    """The newest entry's seq and hash: keep it elsewhere, then `verify --head SEQ:HASH` detects a rewrite."""
    from barecount.evidence import ledger

    try:
        with _warehouse().get_connection(read_only=True) as conn:
            kept = ledger.head(conn)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if kept is None:
        raise UsageError("the ledger is empty")
    if as_json:
        print_json({"seq": kept[0], "hash": kept[1]})
        return
    out.print(f"{kept[0]}:{kept[1]}")


@app.command("verify")
def verify(
    kept_head: Annotated[
        str | None, typer.Option("--head", metavar="SEQ:HASH", help="A head kept earlier (from `ledger head`).")
    ] = None,
    data: Annotated[
        bool,
        typer.Option(
            "--data", help="Also check every partition's rows against the count and content hash its build recorded."
        ),
    ] = False,
    table: Annotated[
        str | None, typer.Option("--table", help="With --data: only this table, e.g. raw.orders (or raw/orders).")
    ] = None,
    period: Annotated[
        str | None, typer.Option("--period", metavar="PERIOD", help="With --data: only this fiscal period.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check the hash chain, and with --data the rows themselves: exit 0 if intact, 1 naming what is not."""
    from barecount.evidence import ledger

    if (table or period) and not data:
        raise UsageError("--table and --period choose what --data checks: add --data")
    expected = None
    if kept_head is not None:
        match = re.fullmatch(r"(\d+):([0-9a-f]{64})", kept_head)
        if not match:
            raise UsageError(f"--head: '{kept_head}' is not SEQ:HASH (a number, a colon, 64 hex digits)")
        expected = (int(match.group(1)), match.group(2))
    entries = _entries()
    problem = ledger.verify(entries, expected)
    if problem:
        raise RefusedError(f"ledger broken: {problem}")
    head_text = f"{entries[-1].seq}:{entries[-1].entry_hash}" if entries else "empty"
    if not data:
        out.print(f"[green]ledger intact[/]: {len(entries)} entries, head {head_text}")
        return
    checked, edited = _verify_data(table, period)
    if as_json:
        print_json({"entries": len(entries), "head": head_text, "partitions_checked": checked, "edited": edited})
    else:
        out.print(f"[green]ledger intact[/]: {len(entries)} entries, head {head_text}")
        if edited:
            shown = Table("table", "period", "expected rows", "expected hash", "found rows", "found hash")
            for e in edited:
                before = e["expected"] or {"rows": "-", "content_hash": "no build on record"}
                shown.add_row(
                    str(e["table"]),
                    str(e["period"] or "snapshot"),
                    str(before["rows"]),
                    str(before["content_hash"]),
                    str(e["found"]["rows"]),
                    str(e["found"]["content_hash"]),
                    style="red",
                )
            out.print(shown)
    if edited:
        raise RefusedError(
            f"{len(edited)} of {checked} partition(s) hold rows their build did not write (edited outside "
            "barecount): `barecount run` for their periods rebuilds them, with a repair entry"
        )
    if not as_json:
        out.print(f"[green]data intact[/]: {checked} partition(s) hold the rows their builds recorded")


def _verify_data(table: str | None, period: str | None) -> tuple[int, list[dict[str, Any]]]:
    """Partitions checked, and the edited ones as dicts (table, asset, period, expected, found)."""
    from barecount.config.profiles import load_settings
    from barecount.evidence.content import verify_content
    from barecount.warehouse.connection import warehouse_file

    settings = load_settings(ProjectPaths.discover())
    if period is not None:
        settings.check_period(period)
    asset = table.replace(".", "/", 1) if table else None
    try:
        with warehouse_file(settings).get_connection(read_only=True) as conn:
            checked, edited = verify_content(conn, settings.tenant.slug, asset, period)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if asset is not None and not checked:
        raise UsageError(f"--table {table}: no build of it is on record")
    return checked, [e.as_dict() for e in edited]


def _label(node: TraceNode) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in node.versions.items() if k != "schema_hash")
    checks = " ".join(f"[green]✓ {c}[/]" if ok else f"[red]✗ {c}[/]" for c, ok in node.checks.items())
    rows = f"{node.rows:,} rows" if node.rows is not None else ""
    parts = [f"[bold]{node.asset}[/] {node.partition or 'snapshot'}", rows, f"run {node.run_id[:8]}", versions, checks]
    return "  ".join(p for p in parts if p) + f"  [dim]ledger #{node.seq} {node.entry_hash[:12]}…[/]"


def _grow(tree: Tree, node: TraceNode) -> None:
    branch = tree.add(_label(node))
    for source in node.sources:
        size = f"{int(source['bytes']):,} bytes" if "bytes" in source else f"{int(source['rows']):,} rows"
        branch.add(f"[cyan]{source['path']}[/] {size} sha256 {str(source['sha256'])[:16]}…")
    for parent in node.inputs:
        _grow(branch, parent)


@app.command("trace")
def trace_command(
    asset: Annotated[str, typer.Argument(metavar="ASSET", help="Asset key, e.g. kpi/net_revenue.")],
    period: Annotated[
        str | None, typer.Argument(metavar="[PERIOD]", help="Fiscal period (none for an unpartitioned asset).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Where a partition's rows came from: every input partition back to the source files (with their SHA-256),
    and the runs, versions, row counts and check results on the way."""
    from barecount.config.profiles import load_settings
    from barecount.evidence.trace import trace

    if period is not None:
        load_settings(ProjectPaths.discover()).check_period(period)
    node = trace(_entries(), asset, period)
    if as_json:
        print_json(node.as_dict())
        return
    root = Tree(f"Trace of {asset} {period or ''}".strip())
    _grow(root, node)
    out.print(root)

"""`barecount quarantine …`: rows held back at the door, by stream, period and rule."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from barecount.assembly import build_warehouse
from barecount.cli.console import out, print_json
from barecount.errors import UsageError
from barecount.profiles import load_settings
from barecount.project import ProjectPaths
from barecount.specs.loader import load_project_specs
from barecount.warehouse.relation import quote_ident, sql_literal

app = typer.Typer(help="Quarantined rows: what was held back, where and why.", no_args_is_help=True)


@app.command("list")
def list_quarantine(
    stream: Annotated[str | None, typer.Option("--stream", help="Only this stream, e.g. orders.")] = None,
    period: Annotated[str | None, typer.Option("--period", help="Only this fiscal period.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Quarantined rows counted by stream, period and the rule they broke."""
    settings = load_settings(ProjectPaths.discover())
    specs = load_project_specs(settings.paths)
    streams = {s.spec.name: s.spec for s in specs.streams}
    if stream is not None and stream not in streams:
        raise UsageError(f"--stream: unknown stream '{stream}' (known: {', '.join(sorted(streams))})")
    if period is not None:
        settings.check_period(period)
    rows: list[dict[str, object]] = []
    try:
        with build_warehouse(settings).get_connection(read_only=True) as conn:
            tables = {
                t
                for (t,) in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'quarantine'"
                ).fetchall()
            }
            for name, spec in sorted(streams.items()):
                if (stream and name != stream) or name not in tables or (period and not spec.partitioned):
                    continue
                period_sql = "fiscal_period" if spec.partitioned else "NULL"
                where = f"WHERE fiscal_period = {sql_literal(period)}" if period else ""
                for found_period, rule, count in conn.execute(
                    f"SELECT {period_sql}, quarantine_rule, count(*) FROM quarantine.{quote_ident(name)} {where} "
                    "GROUP BY ALL ORDER BY ALL"
                ).fetchall():
                    rows.append({"stream": name, "period": found_period, "rule": rule, "rows": int(count)})
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        print_json(rows)
        return
    table = Table("stream", "period", "rule", "rows", title="Quarantined rows")
    for row in rows:
        table.add_row(str(row["stream"]), str(row["period"] or "-"), str(row["rule"]), f"{row['rows']:,}")
    out.print(table if rows else "No quarantined rows.")

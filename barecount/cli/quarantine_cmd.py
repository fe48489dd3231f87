"""`barecount quarantine …`: rows held back at the door, by stream, period and rule."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from barecount.calendar import describe_periods
from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths
from barecount.errors import UsageError

app = typer.Typer(
    help="Quarantined rows: what was held back, where and why; replay them once the cause is fixed.",
    no_args_is_help=True,
)


@app.command("list")
def list_quarantine(
    stream: Annotated[str | None, typer.Option("--stream", help="Only this stream, e.g. orders.")] = None,
    period: Annotated[str | None, typer.Option("--period", metavar="PERIOD", help="Only this fiscal period.")] = None,
    by_period: Annotated[
        bool, typer.Option("--rows", help="One line per stream, period and rule instead of the summary.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the counts per stream, period and rule as JSON objects (stream, period, rule, rows)."
        ),
    ] = False,
) -> None:
    """Quarantined rows counted by stream and the rule they broke, with the periods they are in written as
    ranges (FY1995-P01..FY1995-P04) and a total; --rows counts them period by period."""
    from barecount.catalog.loader import load_project_specs
    from barecount.config.profiles import load_settings
    from barecount.sql.relation import quote_ident, sql_literal
    from barecount.warehouse import catalog
    from barecount.warehouse.connection import warehouse_file

    settings = load_settings(ProjectPaths.discover())
    specs = load_project_specs(settings.paths)
    streams = {s.spec.name: s.spec for s in specs.streams}
    if stream is not None and stream not in streams:
        raise UsageError(f"--stream: unknown stream '{stream}' (known: {', '.join(sorted(streams))})")
    if period is not None:
        settings.check_period(period)
    rows: list[dict[str, Any]] = []
    try:
        with warehouse_file(settings).get_connection(read_only=True) as conn:
            tables = {table for _, table in catalog.tables(conn, ["quarantine"])}
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
    elif not rows:
        out.print("No quarantined rows.")
    else:
        out.print(_by_period(rows) if by_period else _summary(rows))


def _by_period(rows: list[dict[str, Any]]) -> Table:
    table = Table("stream", "period", "rule", "rows", title="Quarantined rows", title_justify="left")
    table.columns[3].justify = "right"
    for row in rows:
        table.add_row(row["stream"], row["period"] or "snapshot", row["rule"], f"{row['rows']:,}")
    table.add_section()
    table.add_row("total", f"{len({r['period'] for r in rows if r['period']})} period(s)", "", _total(rows))
    return table


def _summary(rows: list[dict[str, Any]]) -> Table:
    """One line per stream and rule: the periods its rows are in, as ranges, and how many rows."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["stream"], row["rule"]), []).append(row)
    table = Table("stream", "rule", "periods", "rows", title="Quarantined rows", title_justify="left")
    table.columns[3].justify = "right"
    for (stream, rule), found in sorted(groups.items()):
        periods = [r["period"] for r in found if r["period"]]
        table.add_row(stream, rule, describe_periods(periods) if periods else "snapshot", _total(found))
    table.add_section()
    table.add_row(
        "total", f"{len(groups)} rule(s)", describe_periods(r["period"] for r in rows if r["period"]), _total(rows)
    )
    return table


def _total(rows: list[dict[str, Any]]) -> str:
    return f"{sum(r['rows'] for r in rows):,}"


@app.command("replay")
def replay(
    stream: Annotated[
        str, typer.Argument(metavar="STREAM", help="The stream whose quarantine to replay, e.g. orders.")
    ],
    period: Annotated[str | None, typer.Option("--period", metavar="PERIOD", help="Only this fiscal period.")] = None,
    rule: Annotated[
        str | None, typer.Option("--rule", help="Only rows that broke this rule, e.g. valid_values__o_orderstatus.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-validate quarantined rows against the contract in force for their period and land those that now
    pass (after a fix: an approved contract version, a parent row that landed since). Recorded in the ledger;
    rows in = rows landed + rows quarantined stays true, and replaying again lands nothing twice."""
    import dagster as dg

    from barecount.catalog.loader import load_project_specs
    from barecount.config.instance import open_instance
    from barecount.config.profiles import load_settings
    from barecount.pipeline.replay import replay_quarantine
    from barecount.warehouse.connection import warehouse_file

    settings = load_settings(ProjectPaths.discover())
    if settings.on_bigquery:
        # the replay picks rows by DuckDB's rowid and reads what it deletes with RETURNING: BigQuery has neither
        raise UsageError(
            f"quarantine replay works on a DuckDB warehouse only, not yet on {settings.warehouse_shown}; a run of "
            "the period lands the rows its contract now accepts"
        )
    specs = load_project_specs(settings.paths)
    streams = {s.spec.name: s for s in specs.streams}
    if stream not in streams:
        raise UsageError(f"unknown stream '{stream}' (known: {', '.join(sorted(streams))})")
    if period is not None:
        settings.check_period(period)
    chosen = streams[stream]
    with warehouse_file(settings).get_connection() as conn:
        done = replay_quarantine(
            settings.paths,
            conn,
            chosen,
            {s.spec.contract: s.spec.name for s in specs.streams},
            settings.tenant.slug,
            period,
            rule,
        )
    # Dagster learns that the Raw periods changed, so what is built from them shows as stale in the UI
    with open_instance(settings.paths) as instance:
        for key, rows in done.landed.items():
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    chosen.asset_ref.split("/"),
                    partition=key,
                    description=f"{rows} quarantined row(s) replayed into raw.{stream} ({done.replay_id})",
                    metadata={"replay_id": done.replay_id, "rows_replayed": dg.MetadataValue.int(rows)},
                )
            )
    if as_json:
        print_json(
            {
                "stream": stream,
                "replay_id": done.replay_id,
                "landed": {k or "snapshot": n for k, n in done.landed.items()},
                "still_quarantined": {k or "snapshot": r for k, r in done.still_quarantined.items()},
            }
        )
        return
    table = Table("period", "landed", "still quarantined (by rule)", title=f"Replay {done.replay_id} of {stream}")
    for key in sorted({*done.landed, *done.still_quarantined}, key=lambda k: k or ""):
        still = ", ".join(f"{r}: {n}" for r, n in sorted(done.still_quarantined.get(key, {}).items()))
        table.add_row(key or "snapshot", f"{done.landed.get(key, 0):,}", still or "-")
    out.print(table if done.landed or done.still_quarantined else f"No quarantined rows of {stream} to replay.")
    if done.landed:
        out.print(f"{done.rows_landed:,} row(s) landed; the next `barecount run` rebuilds what is built from them.")

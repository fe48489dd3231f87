"""`barecount kpi …`: KPI-as-code from the command line: each KPI's values and verdicts, its fixture tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from barecount.cli.console import out, print_json
from barecount.cli.tabular import Column, format_column, print_columns, print_csv
from barecount.config.project import ProjectPaths
from barecount.errors import RefusedError, UsageError

if TYPE_CHECKING:
    import duckdb

    from barecount.specs.kpi import KpiSpec

app = typer.Typer(
    help="KPIs as code: show a KPI's values, verdicts and publication per period; test each KPI's SQL on its fixtures.",
    no_args_is_help=True,
)
SPARKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class KpiPeriods:
    """A KPI's rows over some periods, as the warehouse holds them, and where each period stands."""

    columns: list[str]
    """fiscal_period, the dimensions, the measures."""
    rows: list[tuple[Any, ...]]
    gates: list[str]
    verdicts: Mapping[tuple[str, str], tuple[bool, str]]
    """(gate, period) -> (passed, detail) of the newest verdict."""
    published: set[str]
    held: Mapping[str, str]
    """Period -> why its newest publication was held back."""

    @property
    def fields(self) -> list[str]:
        """What each of `records` holds, in order."""
        return [*self.columns, *(f for g in self.gates for f in (g, f"{g}_detail")), "published", "held_because"]

    def records(self) -> list[dict[str, Any]]:
        """One flat record per row, for JSON and CSV: the values exact, each gate's verdict and detail (None: not
        judged), published or not, and why it is held back (None: it is not)."""
        found = []
        for row in self.rows:
            period = str(row[0])
            record = dict(zip(self.columns, row, strict=True))
            for gate in self.gates:
                passed, detail = self.verdicts.get((gate, period), (None, None))
                record[gate] = None if passed is None else ("passed" if passed else "failed")
                record[f"{gate}_detail"] = detail
            record["published"] = period in self.published
            record["held_because"] = self.held.get(period)
            found.append(record)
        return found


@app.command("show")
def show(
    kpi: Annotated[str, typer.Argument(metavar="KPI", help="The KPI's id, e.g. net_revenue.")],
    first: Annotated[
        str | None, typer.Option("--from", metavar="PERIOD", help="First fiscal period (default: the first built).")
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", metavar="PERIOD", help="Last fiscal period (default: the last built).")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print a list of objects, one per period (and combination of dimensions): the values exact "
            "(decimals as strings), each gate's verdict ('passed', 'failed' or null) and detail, published "
            "(true/false) and held_because.",
        ),
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="The same fields as --json, as CSV with a header.")] = False,
) -> None:
    """The KPI's values per fiscal period from the warehouse (kpi.<id>) with its unit, each period's threshold
    and reconciliation verdicts, and whether it is published or held back (and why); then a chart of the series."""
    from barecount.catalog.loader import load_project_specs
    from barecount.config.profiles import load_settings
    from barecount.pipeline.build import gates_of
    from barecount.warehouse.connection import warehouse_file

    if as_json and as_csv:
        raise UsageError("--json and --csv: choose one")
    settings = load_settings(ProjectPaths.discover())
    active = load_project_specs(settings.paths).published_kpis()
    if kpi not in active:
        raise UsageError(f"unknown KPI '{kpi}' (known: {', '.join(sorted(active))})")
    spec = active[kpi]
    keys = settings.partition_keys
    start = keys.index(settings.check_period(first)) if first else 0
    end = keys.index(settings.check_period(last)) + 1 if last else len(keys)
    if start >= end:
        raise UsageError(f"--from {first} comes after --to {last}")
    try:
        with warehouse_file(settings).get_connection(read_only=True) as conn:
            found = _read(conn, spec, settings.tenant.slug, keys[start:end], gates_of(spec))
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        print_json(found.records())
    elif as_csv:
        print_csv(found.fields, [list(r.values()) for r in found.records()])
    elif not found.rows:
        out.print(f"No values of kpi.{kpi} in {keys[start]} .. {keys[end - 1]}.")
    else:
        _print(spec, found)


def _read(
    conn: duckdb.DuckDBPyConnection, spec: KpiSpec, org: str, periods: Sequence[str], gates: list[str]
) -> KpiPeriods:
    from barecount.evidence.verdicts import held_now, latest_verdicts
    from barecount.sql.relation import quote_ident
    from barecount.warehouse.catalog import tables

    built = {layer for layer, table in tables(conn, ["kpi", "published"]) if table == spec.id}
    if "kpi" not in built:
        raise UsageError(f"kpi.{spec.id} is not in the warehouse yet: `barecount run` builds it")
    columns = ["fiscal_period", *spec.dimensions, *spec.measure_columns]
    rows = conn.execute(
        f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM kpi.{quote_ident(spec.id)} "
        "WHERE x_org_slug = ? AND fiscal_period IN (SELECT unnest(?)) ORDER BY ALL",
        [org, list(periods)],
    ).fetchall()
    published = (
        {
            str(p)
            for (p,) in conn.execute(
                f"SELECT DISTINCT fiscal_period FROM published.{quote_ident(spec.id)} "
                "WHERE x_org_slug = ? AND fiscal_period IN (SELECT unnest(?))",
                [org, list(periods)],
            ).fetchall()
        }
        if "published" in built
        else set()
    )
    return KpiPeriods(
        columns,
        rows,
        gates,
        latest_verdicts(conn, f"kpi/{spec.id}", gates, periods),
        published,
        held_now(conn, f"published/{spec.id}", periods),
    )


def _cells(spec: KpiSpec, values: Sequence[object]) -> Sequence[str | Text]:
    """A measure's cells: a ratio as a percentage, any other number formatted (its unit is in the header)."""
    if spec.unit == "ratio":
        return ["NULL" if v is None else f"{float(v):.1%}" for v in values]  # type: ignore[arg-type]
    return format_column(values)[0]


def sparkline(values: Sequence[float | None]) -> str:
    """The series as unicode blocks, lowest ▁ to highest █; a blank where a period has no value."""
    present = [v for v in values if v is not None]
    low, high = (min(present), max(present)) if present else (0.0, 0.0)
    top = len(SPARKS) - 1
    return "".join(
        " " if v is None else SPARKS[round((v - low) / (high - low) * top) if high > low else top // 2] for v in values
    )


def _print(spec: KpiSpec, found: KpiPeriods) -> None:
    periods = [str(r[0]) for r in found.rows]
    values = {name: [row[i] for row in found.rows] for i, name in enumerate(found.columns)}
    names = [
        "period",
        *spec.dimensions,
        *(m if spec.measures else f"value ({spec.unit})" for m in spec.measure_columns),
    ]
    columns: list[Column] = [format_column(values[name]) for name in ("fiscal_period", *spec.dimensions)]
    columns += [(_cells(spec, values[measure]), True) for measure in spec.measure_columns]
    for gate in found.gates:
        names.append(gate)
        columns.append(([_verdict(found.verdicts.get((gate, p))) for p in periods], False))
    names.append("published")
    columns.append(([_publication(p, found) for p in periods], False))
    print_columns(names, columns, f"{spec.label}: kpi.{spec.id} {spec.version}")
    for period, why in sorted(found.held.items()):
        out.print(f"[yellow]{period} held back[/]: {escape(why)}")
    for (gate, period), (passed, detail) in sorted(found.verdicts.items(), key=lambda v: (v[0][1], v[0][0])):
        if not passed and period not in found.held:
            out.print(f"[red]{period} failed its {gate}[/]: {escape(detail)}")
    _chart(spec, found)


def _verdict(verdict: tuple[bool, str] | None) -> Text:
    if verdict is None:
        return Text("not judged", style="dim")
    return Text("✓ passed", style="green") if verdict[0] else Text("✗ failed", style="red")


def _publication(period: str, found: KpiPeriods) -> Text:
    if period in found.held:
        return Text("held" + (" (shows an earlier build)" if period in found.published else ""), style="yellow")
    return Text("published", style="green") if period in found.published else Text("not published", style="dim")


def _chart(spec: KpiSpec, found: KpiPeriods) -> None:
    """A sparkline of the judged measure over the periods shown, one per combination of dimensions."""
    periods = sorted({str(r[0]) for r in found.rows})
    if len(periods) < 2:
        return
    judged = found.columns.index(spec.judged_measure)
    series: dict[tuple[object, ...], dict[str, float | None]] = {}
    for row in found.rows:
        value = row[judged]
        series.setdefault(tuple(row[1 : 1 + len(spec.dimensions)]), {})[str(row[0])] = (
            None if value is None else float(value)
        )
    by = f" by {' / '.join(spec.dimensions)}" if spec.dimensions else ""
    out.print(f"{spec.judged_measure}{by}, {periods[0]} .. {periods[-1]}:")
    for combination, values in series.items():
        line = [values.get(p) for p in periods]
        present = [v for v in line if v is not None]
        low, high = _cells(spec, [min(present), max(present)]) if present else ("", "")
        label = " / ".join(str(c) for c in combination)
        out.print(f"  {escape(label) + '  ' if label else ''}{sparkline(line)}  [dim]low {low}, high {high}[/]")


@app.command("test")
def test(
    kpis: Annotated[
        list[str] | None, typer.Argument(help="KPI ids to test (default: all).", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run every fixture under kpis/<kpi>/tests/: the KPI's SQL on the fixture's input rows must return
    exactly the expected rows. Exit 1 if any fixture fails, 2 if a fixture file is invalid."""
    from barecount.catalog.loader import load_project_specs
    from barecount.config.profiles import load_settings
    from barecount.pipeline.kpi_testing import load_fixtures, run_fixture

    settings = load_settings(ProjectPaths.discover())
    specs = load_project_specs(settings.paths)
    fixtures = load_fixtures(settings.paths, specs.kpis, kpis or ())
    years = (settings.tenant.fiscal_years.first, settings.tenant.fiscal_years.last)
    outcomes = [run_fixture(f, settings.calendar, years) for f in fixtures]
    failed = [o for o in outcomes if not o.passed]
    if as_json:
        print_json(
            [
                {
                    "kpi": o.kpi,
                    "version": o.version,
                    "file": o.file,
                    "description": o.description,
                    "passed": o.passed,
                    "problems": list(o.problems),
                }
                for o in outcomes
            ]
        )
    else:
        table = Table("kpi", "version", "fixture", "result", title="KPI fixture tests")
        for o in outcomes:
            result = "[green]passed[/]" if o.passed else "[red]failed[/]\n" + "\n".join(o.problems)
            table.add_row(o.kpi, o.version, f"{o.file}\n[dim]{o.description}[/]", result)
        out.print(table)
        untested = sorted({k.spec.id for k in specs.kpis} - {o.kpi for o in outcomes}) if not kpis else []  # type: ignore[union-attr]
        out.print(f"{len(outcomes) - len(failed)} of {len(outcomes)} fixture(s) passed")
        if untested:
            out.print(f"KPIs without fixtures: {', '.join(untested)}")
    if failed:
        raise RefusedError(f"{len(failed)} KPI fixture(s) failed: {', '.join(o.file for o in failed)}")

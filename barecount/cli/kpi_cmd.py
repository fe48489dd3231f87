"""`barecount kpi …`: KPI-as-code from the command line: run each KPI's fixture tests."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths
from barecount.errors import RefusedError

app = typer.Typer(help="KPIs as code: test each KPI's SQL on its fixtures.", no_args_is_help=True)


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

"""`barecount calendar …`: fiscal periods and which period a date falls in."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths
from barecount.errors import UsageError

if TYPE_CHECKING:
    from barecount.calendar import FiscalCalendar, FiscalPeriod

app = typer.Typer(help="Fiscal calendar: periods of a year, the period of a date.", no_args_is_help=True)

CalendarOption = Annotated[
    str | None,
    typer.Option("--calendar", help="Calendar preset in resources/calendars/ (default: the tenant's calendar)."),
]


def _calendar(name: str | None) -> FiscalCalendar:
    from barecount.calendar import load_calendar
    from barecount.config.profiles import load_settings

    paths = ProjectPaths.discover()
    if name is None:
        return load_settings(paths).calendar
    return load_calendar(paths.calendars, name, display_root=paths.root)


def _period_json(cal: FiscalCalendar, period: FiscalPeriod) -> dict[str, object]:
    return {
        "key": period.key,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "weeks": period.weeks,
        "working_days": cal.working_days(period.key),
    }


@app.command("periods")
def periods(
    year: Annotated[int, typer.Option("--year", help="Fiscal year, as the calendar labels it.")],
    calendar: CalendarOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the periods of one fiscal year with their dates, weeks and working days."""
    cal = _calendar(calendar)
    rows = [_period_json(cal, p) for p in cal.year_periods(year)]
    if as_json:
        print_json({"calendar": cal.name, "fiscal_year": year, "periods": rows})
        return
    table = Table(title=f"{cal.name}: fiscal year {year}")
    for column in ("key", "start", "end", "weeks", "working days"):
        table.add_column(column, justify="right" if column in ("weeks", "working days") else "left")
    for row in rows:
        weeks = "" if row["weeks"] is None else str(row["weeks"])
        table.add_row(str(row["key"]), str(row["start"]), str(row["end"]), weeks, str(row["working_days"]))
    out.print(table)


@app.command("which")
def which(
    day: Annotated[str, typer.Argument(metavar="DATE", help="A date, YYYY-MM-DD.")],
    calendar: CalendarOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Say which fiscal period a date falls in."""
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise UsageError(f"DATE: '{day}' is not a date (expected YYYY-MM-DD)") from None
    cal = _calendar(calendar)
    period = cal.period_of(parsed)
    if as_json:
        print_json({"calendar": cal.name, "date": parsed.isoformat(), **_period_json(cal, period)})
        return
    out.print(f"{parsed.isoformat()} is in {period.key} ({period.start} .. {period.end}) of {cal.name}")

"""`barecount schedules`: the tenant's calendar schedules, their next ticks and the period each requests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from barecount.cli.console import out, print_json
from barecount.config.project import ProjectPaths
from barecount.errors import UsageError


def schedules(
    count: Annotated[int, typer.Option("--count", min=1, max=100, help="Ticks to show per schedule.")] = 5,
    after: Annotated[
        str | None,
        typer.Option("--after", help="List ticks after this moment (ISO 8601, e.g. 2024-01-20T00:00Z; default now)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the tenant's schedules (resources/tenants/<slug>.yaml: schedules) with their next ticks that request a
    run, and the fiscal period each requests. Dagster runs them while `barecount ui` runs its daemon."""
    from barecount.calendar.schedule import upcoming
    from barecount.config.profiles import load_settings

    settings = load_settings(ProjectPaths.discover())
    start = _moment(after)
    listed = [
        {
            "name": spec.name,
            "kind": spec.kind,
            "rule": spec.rule(),
            "cron": spec.cron,
            "timezone": spec.timezone,
            "running": spec.running,
            "ticks": [
                {"at": tick.at.isoformat(), "period": tick.period}
                for tick in upcoming(spec, settings.calendar, start, count)
            ],
        }
        for spec in settings.tenant.schedules
    ]
    if as_json:
        print_json({"tenant": settings.tenant.slug, "calendar": settings.calendar.name, "schedules": listed})
        return
    if not listed:
        out.print(
            f"tenant {settings.tenant.slug} declares no schedules (resources/tenants/{settings.tenant.slug}.yaml)"
        )
        return
    table = Table("schedule", "rule", "next ticks", "period", title=f"Schedules of {settings.tenant.slug}")
    for item in listed:
        ticks = item["ticks"] or [{"at": "-", "period": "-"}]
        for index, tick in enumerate(ticks):  # type: ignore[arg-type]
            first = index == 0
            at = datetime.fromisoformat(tick["at"]).strftime("%a %Y-%m-%d %H:%M %z") if tick["at"] != "-" else "-"
            table.add_row(item["name"] if first else "", item["rule"] if first else "", at, tick["period"])
    out.print(table)


def _moment(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--after {text}: not an ISO 8601 moment (e.g. 2024-01-20T00:00Z)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

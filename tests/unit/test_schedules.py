"""Schedules by the fiscal calendar: a close-of-period tick falls on the Nth working day after its period ends
(weekends and public holidays skipped, 53-week years included) and requests that period; a daily refresh
requests the open period; Dagster's schedule asks the same rule on every tick."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.defs.assembly import build_definitions
from barecount.errors import SpecErrors
from tests.cli import barecount


def test_every_close_tick_is_the_nth_working_day_after_its_period(repo_paths: ProjectPaths) -> None:
    settings = load_settings(repo_paths)
    calendar = settings.calendar
    (close,) = [s for s in settings.tenant.schedules if s.kind == "close_of_period"]
    assert close.working_days_after is not None
    # from December 2023: the 53-week fiscal 2023 ends with its 5-week P12, then fiscal 2024 has Labor Day
    listed = barecount("schedules", "--json", "--after", "2023-12-01T00:00Z", "--count", "12")
    assert listed.returncode == 0, listed.stderr
    schedules = {s["name"]: s for s in json.loads(listed.stdout)["schedules"]}
    ticks = [(datetime.fromisoformat(t["at"]), t["period"]) for t in schedules[close.name]["ticks"]]
    assert len(ticks) == 12
    for at, key in ticks:
        period = calendar.period(key)
        working = [
            day
            for day in (period.end + timedelta(days=n) for n in range(1, (at.date() - period.end).days + 1))
            if calendar.is_working_day(day)
        ]
        assert len(working) == close.working_days_after and working[-1] == at.date(), (key, at)
        assert (at.hour, at.minute) == (6, 0) and at.tzinfo is not None
    by_period = {key: at.date() for at, key in ticks}
    assert sum(p.weeks for p in calendar.year_periods(2023)) == 53
    assert by_period["FY2023-P12"] == date(2024, 2, 7)  # its 5th week ends Sat 3 Feb: Mon, Tue, Wed
    assert calendar.period("FY2024-P07").end == date(2024, 8, 31)
    assert not calendar.is_working_day(date(2024, 9, 2))  # Labor Day
    assert by_period["FY2024-P07"] == date(2024, 9, 5)  # Tue 3, Wed 4, Thu 5 September
    assert [key for _, key in ticks] == [p.key for p in calendar.periods(2023, 2024)][
        10:22
    ]  # from P11, which ends 30 Dec

    refresh = schedules["daily_refresh"]["ticks"]
    assert [t["period"] for t in refresh] == [
        calendar.period_of(datetime.fromisoformat(t["at"]).date()).key for t in refresh
    ]


def test_dagster_schedule_requests_the_period_due_and_skips_other_days(own_sources: tuple[ProjectPaths, Path]) -> None:
    # a project of its own: the checkout's sources (after `make demo`) would make FY2023-P12 an inactive period
    defs = build_definitions(load_settings(own_sources[0]))
    close = defs.resolve_schedule_def("close_of_period")
    assert close.cron_schedule == "0 6 * * *" and close.execution_timezone == "America/New_York"

    def tick(when: datetime) -> dg.ScheduleExecutionData:
        with dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def()) as c:
            return close.evaluate_tick(c)

    due = tick(datetime(2024, 2, 7, 11, tzinfo=UTC))
    (request,) = due.run_requests or []
    assert request.partition_key == "FY2023-P12"
    assert request.tags["barecount/requested_by"] == "schedule:close_of_period"
    skipped = tick(datetime(2024, 2, 8, 11, tzinfo=UTC))
    assert not skipped.run_requests
    assert skipped.skip_message == "no period closes on 2024-02-08; next: FY2024-P01 on 2024-03-06"


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (
            "{name: close, kind: close_of_period, at: '06:00', timezone: Mars/Base, working_days_after: 3}",
            "schedules[0].timezone: unknown time zone 'Mars/Base'",
        ),
        (
            "{name: close, kind: close_of_period, at: '06:00'}",
            "schedules[0]: working_days_after is set for close_of_period schedules, and for them only",
        ),
        ("{name: daily, kind: daily_refresh, at: '25:00'}", "schedules[0].at: String should match pattern"),
    ],
    ids=["zone", "no-days", "time"],
)
def test_a_bad_schedule_names_the_file_and_field(project_copy: ProjectPaths, schedule: str, expected: str) -> None:
    tenant = project_copy.root / "resources" / "tenants" / "acme.yaml"
    kept = tenant.read_text().split("schedules:")[0]
    tenant.write_text(kept + f"schedules:\n  - {schedule}\n")
    with pytest.raises(SpecErrors) as caught:
        load_settings(project_copy)
    assert "resources/tenants/acme.yaml:" in str(caught.value) and expected in str(caught.value)

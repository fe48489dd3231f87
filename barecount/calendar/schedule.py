"""Schedules from the fiscal calendar, Dagster-free: when a tenant's period closes (N working days after its last
day, the calendar's weekends, public holidays and closures skipped) and which period each tick requests.

Dagster's schedules are cron expressions: none says "the third working day after a 4-5-4 period ends". So each
schedule ticks daily at its time of day, and its tick asks `period_due` whether a period is due that day
(`defs.schedules`); `barecount schedules` lists the ticks that request one (`upcoming`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from barecount.calendar.calendar import FiscalCalendar, FiscalPeriod

LONGEST_CLOSE = 31
"""Working days after a period's end a close may wait at most (a month of working days)."""
LOOKAHEAD_DAYS = 800
"""How far ahead ticks are looked for (two years and more: every period closes in it)."""


class ScheduleSpec(BaseModel):
    """One schedule of a tenant's runs, by its fiscal calendar."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Schedule name, as the Dagster UI shows it.")
    kind: Literal["close_of_period", "daily_refresh"] = Field(
        description="close_of_period: the period that just closed, N working days after its last day. "
        "daily_refresh: the open period (the one today falls in), every day."
    )
    at: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Time of day of the run, HH:MM.")
    timezone: str = Field(default="UTC", description="IANA time zone of `at`, e.g. America/New_York.")
    working_days_after: int | None = Field(
        default=None,
        ge=1,
        le=LONGEST_CLOSE,
        description="close_of_period: the run is on the Nth working day after the period's last day.",
    )
    running: bool = Field(default=True, description="Whether the schedule runs from the start (else it is off).")
    description: str = Field(default="", description="What the schedule is for, shown in the UI.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            near = sorted(z for z in available_timezones() if value.lower() in z.lower())[:3]
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise ValueError(f"unknown time zone {value!r}{hint}") from None
        return value

    @model_validator(mode="after")
    def _close_needs_days(self) -> ScheduleSpec:
        if (self.kind == "close_of_period") != (self.working_days_after is not None):
            raise ValueError("working_days_after is set for close_of_period schedules, and for them only")
        return self

    @property
    def time_of_day(self) -> time:
        hours, minutes = self.at.split(":")
        return time(int(hours), int(minutes))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def cron(self) -> str:
        """The daily cron expression the Dagster schedule ticks on."""
        return f"{self.time_of_day.minute} {self.time_of_day.hour} * * *"

    def rule(self) -> str:
        """The schedule in words."""
        if self.kind == "daily_refresh":
            return f"every day at {self.at} {self.timezone}: the open period"
        return f"working day {self.working_days_after} after a period ends, at {self.at} {self.timezone}"


@dataclass(frozen=True)
class Tick:
    """A tick that requests a run: when, and for which period."""

    at: datetime
    period: str


def close_day(calendar: FiscalCalendar, period: FiscalPeriod, working_days_after: int) -> date:
    """The Nth working day after the period's last day."""
    day, counted = period.end, 0
    while counted < working_days_after:
        day += timedelta(days=1)
        counted += calendar.is_working_day(day)
    return day


def period_due(spec: ScheduleSpec, calendar: FiscalCalendar, day: date) -> str | None:
    """The period a tick of `spec` on `day` (in the schedule's time zone) requests, or None if none is due."""
    if spec.kind == "daily_refresh":
        return calendar.period_of(day).key
    assert spec.working_days_after is not None
    # a close is at most LONGEST_CLOSE working days (and so about two months) after its period's end
    period = calendar.period_of(day)
    for _ in range(4):
        period = calendar.previous(period.key)
        if close_day(calendar, period, spec.working_days_after) == day:
            return period.key
    return None


def upcoming(spec: ScheduleSpec, calendar: FiscalCalendar, after: datetime, count: int) -> list[Tick]:
    """The next `count` ticks of `spec` after `after` that request a period."""
    zone = spec.zone
    start = after.astimezone(zone)
    found: list[Tick] = []
    for day in _days_from(start.date()):
        moment = datetime.combine(day, spec.time_of_day, zone)
        if moment <= start:
            continue
        period = period_due(spec, calendar, day)
        if period is not None:
            found.append(Tick(moment, period))
            if len(found) == count:
                return found
    return found


def _days_from(first: date) -> Iterator[date]:
    for offset in range(LOOKAHEAD_DAYS):
        yield first + timedelta(days=offset)

"""The fiscal calendar for Dagster: partition keys and a resource for assets, checks and schedules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import cache
from pathlib import Path

import dagster as dg
from pydantic import Field

from barecount.calendar.calendar import FiscalCalendar, load_calendar


def build_partitions_def(active: Sequence[str]) -> dg.StaticPartitionsDefinition:
    """Period keys `FY{YYYY}-P{NN}` of the active periods, in calendar order (time windows cannot express 4-5-4
    or 53-week years). Only the active periods: a complete build then shows no missing partition."""
    return dg.StaticPartitionsDefinition(list(active))


@cache
def _load(calendars_dir: str, name: str) -> FiscalCalendar:
    return load_calendar(Path(calendars_dir), name)


class FiscalCalendarResource(dg.ConfigurableResource):
    """The organisation's fiscal calendar and the fiscal years that get partition keys."""

    calendars_dir: str = Field(description="Folder of calendar files (resources/calendars).")
    calendar_name: str = Field(description="Calendar file stem, e.g. nrf-4-5-4.")
    first_year: int = Field(description="First fiscal year with partition keys.")
    last_year: int = Field(description="Last fiscal year with partition keys.")

    def calendar(self) -> FiscalCalendar:
        return _load(self.calendars_dir, self.calendar_name)

    def partition_keys(self) -> list[str]:
        return [p.key for p in self.calendar().periods(self.first_year, self.last_year)]

    def sort_keys(self, keys: object) -> list[str]:
        """Period keys in calendar order (Dagster hands a range's keys over unordered)."""
        calendar = self.calendar()
        return sorted((str(k) for k in keys), key=lambda k: calendar.period(k).start)  # type: ignore[attr-defined]

    def run_date(self, key: str) -> date:
        """The data date of a period: its last day."""
        return self.calendar().period(key).end

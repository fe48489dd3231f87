"""The fiscal calendar: pure Python (`calendar.py`, `spec.py`) plus a Dagster adapter (`partitions.py`)."""

from barecount.calendar.calendar import (
    FiscalCalendar,
    FiscalPeriod,
    available_calendars,
    describe_periods,
    load_calendar,
    parse_period_key,
)
from barecount.calendar.spec import CalendarSpec

__all__ = [
    "CalendarSpec",
    "FiscalCalendar",
    "FiscalPeriod",
    "available_calendars",
    "describe_periods",
    "load_calendar",
    "parse_period_key",
]

"""`FiscalCalendar`: fiscal years, periods and working days from a `CalendarSpec`. Pure Python."""

from __future__ import annotations

import bisect
import calendar as stdlib_calendar
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property, lru_cache
from pathlib import Path

from barecount.calendar.spec import WEEK_PATTERNS, WEEKDAYS, CalendarSpec, FixedDate, LastWeekday, NearestWeekday
from barecount.errors import SpecErrors, UsageError
from barecount.yaml_source import parse_spec

KEY_PATTERN = re.compile(r"^FY(\d{4})-P(\d{2})$")


@dataclass(frozen=True, order=True)
class FiscalPeriod:
    """One period of a fiscal year; `end` is inclusive."""

    fiscal_year: int
    number: int
    start: date
    end: date
    weeks: int | None

    @property
    def key(self) -> str:
        return f"FY{self.fiscal_year:04d}-P{self.number:02d}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


def parse_period_key(key: str) -> tuple[int, int]:
    """`FY2024-P03` -> (2024, 3); a `UsageError` saying what is expected otherwise."""
    match = KEY_PATTERN.match(key)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise UsageError(f"malformed period key '{key}': expected FY<YYYY>-P<NN> with NN 01..12, such as FY2024-P03")
    return int(match.group(1)), int(match.group(2))


def describe_periods(keys: Iterable[str]) -> str:
    """Period keys as calendar-ordered runs, e.g. `FY1995-P01..FY1996-P12 (24 periods), FY1998-P03`; "" for none.

    Every fiscal year has 12 periods and its P01 follows the previous year's P12, so a key alone says where it
    lies: no calendar is needed to tell a run from a gap. A key given twice counts once.
    """
    ordinals = sorted({year * 12 + number - 1 for year, number in map(parse_period_key, keys)})
    runs: list[list[int]] = []
    for ordinal in ordinals:
        if runs and ordinal == runs[-1][1] + 1:
            runs[-1][1] = ordinal
        else:
            runs.append([ordinal, ordinal])

    def key(ordinal: int) -> str:
        return f"FY{ordinal // 12:04d}-P{ordinal % 12 + 1:02d}"

    return ", ".join(
        key(first) if first == last else f"{key(first)}..{key(last)} ({last - first + 1} periods)"
        for first, last in runs
    )


def _month_end(year: int, month: int) -> date:
    return date(year, month, stdlib_calendar.monthrange(year, month)[1])


class FiscalCalendar:
    """Periods, windows and working days of one fiscal calendar (see `CalendarSpec` for the rules)."""

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self.name = spec.name
        # a fiscal year's label is its anchoring calendar year shifted by a constant
        self._label_offset = self._label_for(2000) - 2000

    @classmethod
    def from_spec(cls, spec: CalendarSpec) -> FiscalCalendar:
        return cls(spec)

    # --- years -----------------------------------------------------------------------------------
    def _calendar_year_end(self, year: int) -> date:
        """The year end that falls in (or next to) calendar year `year` under the year-end rule."""
        rule = self.spec.year_end
        if isinstance(rule, FixedDate):
            return (
                _month_end(year, rule.month)
                if self.spec.pattern == "calendar-month"
                else date(year, rule.month, rule.day)
            )
        target = WEEKDAYS.index(rule.weekday)
        if isinstance(rule, NearestWeekday):
            anchor = date(year, rule.month, min(rule.day, stdlib_calendar.monthrange(year, rule.month)[1]))
            offset = (target - anchor.weekday()) % 7
            return anchor + timedelta(days=offset - 7 if offset > 3 else offset)
        assert isinstance(rule, LastWeekday)
        last = _month_end(year, rule.month)
        return last - timedelta(days=(last.weekday() - target) % 7)

    def _label_for(self, year: int) -> int:
        start = self._calendar_year_end(year - 1) + timedelta(days=1)
        return start.year if self.spec.label == "start_year" else self._calendar_year_end(year).year

    def year_bounds(self, fiscal_year: int) -> tuple[date, date]:
        """First and last day of a fiscal year."""
        year = fiscal_year - self._label_offset
        return self._calendar_year_end(year - 1) + timedelta(days=1), self._calendar_year_end(year)

    def year_end(self, fiscal_year: int) -> date:
        return self.year_bounds(fiscal_year)[1]

    def fiscal_year_of(self, day: date) -> int:
        year = day.year
        if day > self._calendar_year_end(year):
            year += 1
        elif day <= self._calendar_year_end(year - 1):
            year -= 1
        return year + self._label_offset

    # --- periods ---------------------------------------------------------------------------------
    def year_periods(self, fiscal_year: int) -> list[FiscalPeriod]:
        """The 12 periods of a fiscal year, in order."""
        return list(self._year_periods(fiscal_year))

    @lru_cache(maxsize=512)  # noqa: B019 - calendars live as long as the process; years are few
    def _year_periods(self, fiscal_year: int) -> tuple[FiscalPeriod, ...]:
        start, end = self.year_bounds(fiscal_year)
        if self.spec.pattern == "calendar-month":
            periods, first = [], start
            for number in range(1, 13):
                last = _month_end(first.year, first.month)
                periods.append(FiscalPeriod(fiscal_year, number, first, last, None))
                first = last + timedelta(days=1)
            return tuple(periods)
        weeks = list(WEEK_PATTERNS[self.spec.pattern] * 4)
        if (end - start).days + 1 == 371:
            weeks[(self.spec.extra_week_period or 12) - 1] += 1
        periods, first = [], start
        for number, count in enumerate(weeks, start=1):
            last = first + timedelta(weeks=count, days=-1)
            periods.append(FiscalPeriod(fiscal_year, number, first, last, count))
            first = last + timedelta(days=1)
        return tuple(periods)

    def period(self, key: str) -> FiscalPeriod:
        """The period a key names (`FY2024-P03`)."""
        fiscal_year, number = parse_period_key(key)
        return self._year_periods(fiscal_year)[number - 1]

    def window(self, key: str) -> tuple[date, date]:
        """First and last day (inclusive) of a period."""
        found = self.period(key)
        return found.start, found.end

    def period_of(self, day: date) -> FiscalPeriod:
        """The period a date falls in."""
        periods = self._year_periods(self.fiscal_year_of(day))
        return periods[bisect.bisect_right([p.start for p in periods], day) - 1]

    def periods(self, first_year: int, last_year: int) -> list[FiscalPeriod]:
        """Every period of the fiscal years `first_year`..`last_year`, in order."""
        return [p for year in range(first_year, last_year + 1) for p in self._year_periods(year)]

    def periods_between(self, start: date, end: date) -> list[FiscalPeriod]:
        """Every period touching the dates `start`..`end`, in order."""
        return [
            p
            for p in self.periods(self.fiscal_year_of(start), self.fiscal_year_of(end))
            if p.end >= start and p.start <= end
        ]

    def previous(self, key: str) -> FiscalPeriod:
        found = self.period(key)
        return self.period_of(found.start - timedelta(days=1))

    def next(self, key: str) -> FiscalPeriod:
        found = self.period(key)
        return self.period_of(found.end + timedelta(days=1))

    def same_period_last_year(self, key: str) -> FiscalPeriod:
        found = self.period(key)
        return self._year_periods(found.fiscal_year - 1)[found.number - 1]

    # --- working days ----------------------------------------------------------------------------
    @cached_property
    def _holidays(self) -> PublicHolidays | None:
        spec = self.spec.holidays
        return None if spec.country is None else PublicHolidays(spec.country, spec.subdivision)

    @cached_property
    def _weekend(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(d) for d in self.spec.weekend)

    def is_working_day(self, day: date) -> bool:
        if day.weekday() in self._weekend or day in self.spec.holidays.closures:
            return False
        return self._holidays is None or day not in self._holidays

    @lru_cache(maxsize=4096)  # noqa: B019 - every calendar table and reconciliation asks for every period
    def working_days(self, key: str) -> int:
        """Working days in a period: not weekend, not a public holiday, not a company closure."""
        start, end = self.window(key)
        return sum(self.is_working_day(start + timedelta(days=i)) for i in range((end - start).days + 1))


class PublicHolidays:
    """The public holidays of a country (and subdivision) from the `holidays` package, kept on disk by year.

    Asking `holidays` for one country imports all of its ~280 country modules: 0.45 s in every process that
    counts working days, which is every run (the calendar table's fingerprint). The dates are kept in the user's
    cache folder, by country and the package's version, so a process that finds its years there never imports it.
    """

    SPAN = 30
    """Years on either side of a year not yet kept, computed with it."""

    def __init__(self, country: str, subdivision: str | None) -> None:
        from importlib.metadata import version

        self.country, self.subdivision = country, subdivision
        name = f"holidays-{country}-{subdivision or 'all'}-{version('holidays')}.json"
        try:
            self.file: Path | None = (
                Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "barecount" / name
            )
        except (RuntimeError, KeyError):  # no home folder to be found: nothing is kept
            self.file = None
        self._years: dict[int, frozenset[date]] | None = None

    def __contains__(self, day: date) -> bool:
        if self._years is None:
            self._years = self._read()
        if day.year not in self._years:
            self._years |= self._computed(range(day.year - self.SPAN, day.year + self.SPAN + 1))
            self._write(self._years)
        return day in self._years[day.year]

    def _computed(self, years: range) -> dict[int, frozenset[date]]:
        import holidays

        found = holidays.country_holidays(self.country, subdiv=self.subdivision, years=years)
        return {year: frozenset(d for d in found if d.year == year) for year in years}

    def _read(self) -> dict[int, frozenset[date]]:
        if self.file is None:
            return {}
        try:
            kept = json.loads(self.file.read_text(encoding="utf-8"))
            return {int(year): frozenset(map(date.fromisoformat, days)) for year, days in kept.items()}
        except (OSError, ValueError, AttributeError):  # not there yet, or not ours: compute again
            return {}

    def _write(self, years: dict[int, frozenset[date]]) -> None:
        """Keep the dates for the next process; a cache folder that cannot be written only means no cache."""
        if self.file is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            partial = self.file.with_name(f"{self.file.name}.{os.getpid()}")
            partial.write_text(json.dumps({y: sorted(map(str, d)) for y, d in sorted(years.items())}), "utf-8")
            partial.replace(self.file)
        except OSError:
            pass


def available_calendars(calendars_dir: Path) -> list[str]:
    return sorted(p.stem for p in calendars_dir.glob("*.yaml"))


def load_calendar(calendars_dir: Path, name: str, display_root: Path | None = None) -> FiscalCalendar:
    """The calendar `resources/calendars/<name>.yaml`; unknown names list the known ones."""
    file = calendars_dir / f"{name}.yaml"
    if not file.is_file():
        known = ", ".join(available_calendars(calendars_dir)) or "none"
        raise UsageError(f"unknown calendar '{name}' (known: {known})")
    shown = str(file.relative_to(display_root)) if display_root and file.is_relative_to(display_root) else str(file)
    spec = parse_spec(file, CalendarSpec, shown)
    if spec.name != name:
        raise SpecErrors.single(shown, "name", f"'{spec.name}' does not match the file name '{name}'", 1, 1)
    return FiscalCalendar(spec)

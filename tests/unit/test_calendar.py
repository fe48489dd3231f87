"""The fiscal calendar: coverage, NRF year ends, 53-week years, calendar months, working days, bad files."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import holidays
import pandas as pd
import pytest

from barecount.calendar import FiscalCalendar, describe_periods, load_calendar, parse_period_key
from barecount.calendar.calendar import PublicHolidays
from barecount.config.project import ProjectPaths
from barecount.defs.partitions import build_partitions_def
from barecount.errors import SpecErrors, UsageError
from barecount.sql.calendar_tables import CALENDAR_TABLES

PRESETS = ("nrf-4-5-4", "calendar-month", "4-4-5")


@pytest.fixture(scope="module")
def calendars(repo_paths: ProjectPaths) -> dict[str, FiscalCalendar]:
    return {name: load_calendar(repo_paths.calendars, name) for name in PRESETS}


@pytest.mark.parametrize("name", PRESETS)
def test_every_day_1990_2040_lies_in_exactly_one_period(calendars: dict[str, FiscalCalendar], name: str) -> None:
    cal = calendars[name]
    first, last = cal.fiscal_year_of(date(1990, 1, 1)), cal.fiscal_year_of(date(2040, 12, 31))
    periods = cal.periods(first, last)
    assert periods[0].start <= date(1990, 1, 1) and periods[-1].end >= date(2040, 12, 31)
    for previous, current in itertools.pairwise(periods):
        assert current.start == previous.end + timedelta(days=1), (previous.key, current.key)
    keys = [p.key for p in periods]
    assert len(keys) == len(set(keys)) == 12 * (last - first + 1)
    day = date(1990, 1, 1)
    while day <= date(2040, 12, 31):
        found = cal.period_of(day)
        assert found.contains(day) and cal.period(found.key) == found
        day += timedelta(days=1)


def test_nrf_year_ends_match_pandas_fy5253(calendars: dict[str, FiscalCalendar]) -> None:
    nrf = calendars["nrf-4-5-4"]
    offset = pd.tseries.offsets.FY5253(weekday=5, startingMonth=1, variation="nearest")
    for fiscal_year in range(1990, 2041):
        # NRF labels a year by the calendar year it starts in, so it ends early in the next one
        expected = offset.rollforward(pd.Timestamp(fiscal_year + 1, 1, 1)).date()
        assert nrf.year_end(fiscal_year) == expected, fiscal_year


def test_nrf_published_years_and_53rd_week(calendars: dict[str, FiscalCalendar]) -> None:
    nrf = calendars["nrf-4-5-4"]
    assert nrf.year_bounds(2024) == (date(2024, 2, 4), date(2025, 2, 1))
    assert nrf.year_bounds(2023) == (date(2023, 1, 29), date(2024, 2, 3))
    long_years = [y for y in range(1990, 2041) if (nrf.year_end(y) - nrf.year_bounds(y)[0]).days == 370]
    assert {2000, 2006, 2012, 2017, 2023} <= set(long_years)
    for year in range(1990, 2041):
        weeks = [p.weeks for p in nrf.year_periods(year)]
        assert weeks == [4, 5, 4] * 3 + [4, 5, 5 if year in long_years else 4], year


def test_4_4_5_puts_the_extra_week_where_it_says(calendars: dict[str, FiscalCalendar]) -> None:
    cal = calendars["4-4-5"]
    years = [cal.year_periods(y) for y in range(2000, 2030)]
    assert all(sum(p.weeks or 0 for p in ps) in (52, 53) for ps in years)
    long_year = next(ps for ps in years if sum(p.weeks or 0 for p in ps) == 53)
    assert [p.weeks for p in long_year] == [4, 4, 5] * 3 + [4, 4, 6]
    assert all(ps[-1].end.weekday() == 5 and ps[-1].end.month == 9 and ps[-1].end.day > 23 for ps in years)
    assert cal.period_of(date(2024, 9, 28)).key == "FY2024-P12"  # last Saturday of September 2024


def test_calendar_month_periods_are_months(calendars: dict[str, FiscalCalendar]) -> None:
    cal = calendars["calendar-month"]
    for year in (1992, 2000, 2024):
        for period in cal.year_periods(year):
            assert period.start == date(year, period.number, 1)
            assert (period.end + timedelta(days=1)).day == 1 and period.end.month == period.number
            assert period.weeks is None


def test_working_days_exclude_weekends_holidays_and_closures(calendars: dict[str, FiscalCalendar]) -> None:
    months = calendars["calendar-month"]
    assert months.working_days("FY2024-P07") == 22  # July 2024: 23 weekdays less Independence Day
    assert not months.is_working_day(date(2024, 7, 4)) and months.is_working_day(date(2024, 7, 5))
    assert not months.is_working_day(date(2024, 7, 6))
    four = calendars["4-4-5"]
    assert not four.is_working_day(date(2024, 12, 24))  # configured closure, a Tuesday
    assert months.is_working_day(date(2024, 12, 24))


def test_previous_next_and_same_period_last_year(calendars: dict[str, FiscalCalendar]) -> None:
    nrf = calendars["nrf-4-5-4"]
    assert nrf.previous("FY2024-P01").key == "FY2023-P12"
    assert nrf.next("FY2023-P12").key == "FY2024-P01"
    assert nrf.previous("FY2024-P05").key == "FY2024-P04"
    assert nrf.same_period_last_year("FY2024-P03").key == "FY2023-P03"


@pytest.mark.parametrize("key", ["FY95-P1", "FY2024-P13", "FY2024-P00", "2024-P01", ""])
def test_malformed_keys_are_explained(key: str) -> None:
    with pytest.raises(UsageError, match="malformed period key"):
        parse_period_key(key)


def test_partition_keys_are_ordered_and_unique(calendars: dict[str, FiscalCalendar]) -> None:
    keys = [p.key for p in calendars["nrf-4-5-4"].periods(1991, 2027)]
    assert len(keys) == len(set(keys)) == 37 * 12 and keys == sorted(keys)
    assert build_partitions_def(keys[3:9]).get_partition_keys() == keys[3:9]


NRF = """name: bad
pattern: 4-5-4
year_end:
  rule: nearest_weekday
  weekday: saturday
  month: 1
  day: 31
extra_week_period: 12
label: start_year
"""
NRF_YEAR_END = "rule: nearest_weekday\n  weekday: saturday\n  month: 1\n  day: 31"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            NRF.replace("pattern: 4-5-4", "pattern: 4-4-4"),
            "bad.yaml:2:1: pattern: Input should be '4-4-5', '4-5-4', '5-4-4' or 'calendar-month' (got '4-4-4')",
        ),
        (
            NRF.replace("pattern: 4-5-4", "pattern: calendar-month").replace(
                "rule: nearest_weekday\n  weekday: saturday\n  month: 1\n  day: 31",
                "rule: fixed_date\n  month: 12\n  day: 31",
            ),
            "bad.yaml:7:1: extra_week_period: a calendar-month calendar has no 53-week years; a 53rd-week rule "
            "contradicts its fixed_date year end",
        ),
        (
            NRF.replace("weekday: saturday", "weekday: caturday"),
            "bad.yaml:5:3: year_end.weekday: Input should be 'monday', 'tuesday', 'wednesday', 'thursday', "
            "'friday', 'saturday' or 'sunday' (got 'caturday')",
        ),
        (NRF + "colour: red\n", "bad.yaml:10:1: colour: unknown field"),
        (
            NRF.replace(NRF_YEAR_END, "rule: fixed_date\n  month: 2\n  day: 30"),
            "bad.yaml:3:1: year_end: day 30 does not exist in month 2 every year",
        ),
        (
            NRF.replace(NRF_YEAR_END, "rule: fixed_date\n  month: 12\n  day: 31"),
            "bad.yaml:3:1: year_end: a 4-5-4 calendar counts whole weeks, so its year must end on a weekday rule",
        ),
    ],
)
def test_bad_calendar_files_name_file_line_field_and_value(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(SpecErrors) as caught:
        load_calendar(tmp_path, "bad", display_root=tmp_path)
    assert any(str(e).startswith(expected) for e in caught.value.errors), str(caught.value)


def test_unknown_calendar_lists_the_known_ones(repo_paths: ProjectPaths) -> None:
    with pytest.raises(UsageError, match=r"unknown calendar 'nope' \(known: 4-4-5, calendar-month, nrf-4-5-4\)"):
        load_calendar(repo_paths.calendars, "nope")


def test_calendar_tables_have_the_types_their_sql_gives(calendars: dict[str, FiscalCalendar]) -> None:
    """Project SQL is planned on empty calendar tables of these types (`catalog.planning`)."""
    with duckdb.connect() as conn:
        for ref, (build, types, _) in CALENDAR_TABLES.items():
            described = conn.execute(f"DESCRIBE {build(calendars['nrf-4-5-4'], 2020, 2021)}").fetchall()
            assert {str(r[0]): str(r[1]) for r in described} == types, ref


def test_periods_are_described_as_runs_in_calendar_order(calendars: dict[str, FiscalCalendar]) -> None:
    every = [p.key for p in calendars["nrf-4-5-4"].periods(1995, 1998)]
    chosen = [*every[:24], "FY1998-P03", "FY1997-P05", "FY1997-P06", "FY1995-P01"]  # unordered, one twice
    assert describe_periods(reversed(chosen)) == (
        "FY1995-P01..FY1996-P12 (24 periods), FY1997-P05..FY1997-P06 (2 periods), FY1998-P03"
    )
    # what follows what is each calendar's order: a year's P12 runs into the next year's P01
    for calendar in calendars.values():
        assert describe_periods(p.key for p in calendar.periods(1990, 2040)) == "FY1990-P01..FY2040-P12 (612 periods)"
    assert describe_periods(["FY1995-P12", "FY1996-P01"]) == "FY1995-P12..FY1996-P01 (2 periods)"
    assert describe_periods(["FY1995-P01", "FY1995-P03"]) == "FY1995-P01, FY1995-P03"
    assert describe_periods([]) == ""
    with pytest.raises(UsageError, match="malformed period key 'FY1995-P13'"):
        describe_periods(["FY1995-P13"])


def test_public_holidays_are_the_package_s_and_kept_for_the_next_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    kept, package = PublicHolidays("US", "CA"), holidays.country_holidays("US", subdiv="CA")
    days = [date(1985, 1, 1) + timedelta(days=n) for n in range(366 * 50)]
    assert [day in kept for day in days] == [day in package for day in days]
    assert list(tmp_path.glob("barecount/holidays-US-CA-*.json"))
    # a new process answers from the kept dates, without importing the package's ~280 country modules
    code = (
        "import sys; from datetime import date; from barecount.calendar.calendar import PublicHolidays; "
        "h = PublicHolidays('US', 'CA'); print(date(2024, 7, 4) in h, date(2024, 7, 5) in h, "
        "'holidays.countries' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False", "False"]

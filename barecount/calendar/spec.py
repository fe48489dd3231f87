"""The calendar file format (`resources/calendars/<name>.yaml`), validated with pydantic."""

from __future__ import annotations

import calendar as stdlib_calendar
from datetime import date
from typing import Annotated, Literal

import holidays
from holidays.registry import EntityLoader
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEK_PATTERNS: dict[str, tuple[int, int, int]] = {"4-4-5": (4, 4, 5), "4-5-4": (4, 5, 4), "5-4-4": (5, 4, 4)}

_CONFIG = ConfigDict(extra="forbid", frozen=True)


class NearestWeekday(BaseModel):
    """The year ends on the given weekday nearest a date (NRF: the Saturday nearest 31 January)."""

    model_config = _CONFIG
    rule: Literal["nearest_weekday"]
    weekday: Weekday = Field(description="Weekday the fiscal year ends on.")
    month: int = Field(ge=1, le=12, description="Month of the anchor date.")
    day: int = Field(ge=1, le=31, description="Day of the anchor date.")


class LastWeekday(BaseModel):
    """The year ends on the last given weekday of a month (e.g. the last Saturday of September)."""

    model_config = _CONFIG
    rule: Literal["last_weekday"]
    weekday: Weekday = Field(description="Weekday the fiscal year ends on.")
    month: int = Field(ge=1, le=12, description="Month whose last such weekday ends the year.")


class FixedDate(BaseModel):
    """The year ends on a fixed date (31 December for calendar months)."""

    model_config = _CONFIG
    rule: Literal["fixed_date"]
    month: int = Field(ge=1, le=12, description="Month of the last day of the fiscal year.")
    day: int = Field(ge=1, le=31, description="Last day of the fiscal year.")

    @model_validator(mode="after")
    def _day_exists(self) -> FixedDate:
        # 29 February would not exist every year; the latest day that always exists is the 28th
        longest = 28 if self.month == 2 else stdlib_calendar.monthrange(2023, self.month)[1]
        if self.day > longest:
            raise ValueError(f"day {self.day} does not exist in month {self.month} every year")
        return self


YearEndRule = Annotated[NearestWeekday | LastWeekday | FixedDate, Field(discriminator="rule")]


class HolidaySpec(BaseModel):
    """Public holidays from the `holidays` package, plus the company's own closures."""

    model_config = _CONFIG
    country: str | None = Field(default=None, description="ISO 3166 country code, e.g. US (holidays package).")
    subdivision: str | None = Field(default=None, description="State or province code, e.g. CA.")
    closures: list[date] = Field(default=[], description="Company closure days that are not working days.")

    @model_validator(mode="after")
    def _known_country(self) -> HolidaySpec:
        if self.country is None:
            if self.subdivision is not None:
                raise ValueError("subdivision needs a country")
            return self
        # the registry's codes, then the one country's class: `list_supported_countries` imports every country's
        # module to list their subdivisions (0.26 s in every process that reads a calendar)
        if self.country not in set(EntityLoader.get_country_codes()):
            raise ValueError(f"country '{self.country}' is not known to the holidays package")
        if self.subdivision is not None and self.subdivision not in getattr(holidays, self.country).subdivisions:
            raise ValueError(f"subdivision '{self.subdivision}' is not known for country {self.country}")
        return self


class CalendarSpec(BaseModel):
    """A fiscal calendar: how the year is cut into 12 periods, where it ends, how it is labelled."""

    model_config = _CONFIG
    name: str = Field(description="Calendar name; must equal the file name.")
    description: str = Field(default="", description="What the calendar is and who publishes it.")
    pattern: Literal["4-4-5", "4-5-4", "5-4-4", "calendar-month"] = Field(
        description="Weeks per period in each quarter, or calendar months."
    )
    year_end: YearEndRule = Field(description="Rule for the last day of each fiscal year.")
    extra_week_period: int | None = Field(
        default=None, ge=1, le=12, description="Week patterns: the period that gets the 53rd week (e.g. 12)."
    )
    label: Literal["start_year", "end_year"] = Field(
        description="A fiscal year is named by the calendar year in which it starts or ends."
    )
    weekend: list[Weekday] = Field(default=["saturday", "sunday"], description="Days that are not working days.")
    holidays: HolidaySpec = Field(default_factory=HolidaySpec, description="Holidays that are not working days.")

    @field_validator("weekend")
    @classmethod
    def _distinct(cls, value: list[Weekday]) -> list[Weekday]:
        if len(set(value)) != len(value) or len(value) > 6:
            raise ValueError("weekend days must be distinct and leave at least one working day")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CalendarSpec:
        weeks = self.pattern in WEEK_PATTERNS
        if weeks and isinstance(self.year_end, FixedDate):
            raise ValueError(
                f"year_end: a {self.pattern} calendar counts whole weeks, so its year must end on a weekday "
                "rule (nearest_weekday or last_weekday), not a fixed_date"
            )
        if weeks and self.extra_week_period is None:
            raise ValueError(
                f"extra_week_period: a {self.pattern} calendar has 53-week years; say which period gets the extra week"
            )
        if not weeks:
            if not isinstance(self.year_end, FixedDate):
                raise ValueError("year_end: a calendar-month calendar ends its year on a fixed_date")
            if self.year_end.day != (
                28 if self.year_end.month == 2 else stdlib_calendar.monthrange(2023, self.year_end.month)[1]
            ):
                raise ValueError("year_end: a calendar-month calendar ends its year on the last day of a month")
            if self.extra_week_period is not None:
                raise ValueError(
                    "extra_week_period: a calendar-month calendar has no 53-week years; "
                    "a 53rd-week rule contradicts its fixed_date year end"
                )
        return self

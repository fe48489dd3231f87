"""`calendar/fiscal_periods`: the fiscal calendar as a warehouse table, so SQL can use it.

KPIs divide by working days, and reconciliations place source dates in fiscal periods, with the
same calendar the partitions come from, instead of re-deriving it in SQL.
"""

from __future__ import annotations

import dagster as dg

from barecount.calendar.calendar import FiscalCalendar
from barecount.factories.common import asset_key, code_version
from barecount.warehouse.relation import INTERNAL_CREDENTIAL, SqlRelation, sql_literal

CALENDAR_ASSET = "calendar/fiscal_periods"
CALENDAR_COLUMNS = (
    "fiscal_period",
    "fiscal_year",
    "period_number",
    "start_date",
    "end_date",
    "days",
    "working_days",
)


def calendar_sql(calendar: FiscalCalendar, first_year: int, last_year: int) -> str:
    """One row per fiscal period of the years, as a VALUES list (a few dozen rows)."""
    rows = ",\n    ".join(
        f"({sql_literal(p.key)}, {p.fiscal_year}, {p.number}, {sql_literal(p.start)}, {sql_literal(p.end)}, "
        f"{(p.end - p.start).days + 1}, {calendar.working_days(p.key)})"
        for p in calendar.periods(first_year, last_year)
    )
    return f"SELECT * FROM (VALUES\n    {rows}\n) AS calendar({', '.join(CALENDAR_COLUMNS)})"


def build_calendar_asset(calendar: FiscalCalendar, first_year: int, last_year: int) -> dg.AssetsDefinition:
    sql = calendar_sql(calendar, first_year, last_year)
    version = code_version(sql)

    @dg.asset(
        key=asset_key(CALENDAR_ASSET),
        description=(
            f"The {calendar.spec.name} fiscal calendar, fiscal years {first_year} to {last_year}: one row per "
            "period with its dates, days and working days (weekends, public holidays and company closures excluded)."
        ),
        group_name="calendar",
        tags={"domain": "calendar"},
        owners=["team:finance-data"],
        kinds={"duckdb"},
        code_version=version,
        metadata={"columns": ", ".join(CALENDAR_COLUMNS)},
    )
    def fiscal_periods() -> SqlRelation:
        return SqlRelation(
            sql=sql, pipeline_id="calendar.fiscal_periods", credential_id=INTERNAL_CREDENTIAL, code_version=version
        )

    return fiscal_periods

"""The `reconciliation` gate of a KPI: its numbers recomputed from the system of record must agree.

The reconciliation SQL reads the source extracts as delivered (`source.<stream>`), not Raw, so a row
lost or changed anywhere between the source and the KPI shows up as a difference. It runs in the
warehouse over the periods the run wrote; only the few KPI rows come back to be compared.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal

import dagster as dg
import duckdb

from barecount.calendar import FiscalCalendar
from barecount.calendar.partitions import FiscalCalendarResource
from barecount.calendar.table import CALENDAR_TABLES, calendar_table_sql
from barecount.connectors.files import SourceFiles
from barecount.factories.checks import settle_gate
from barecount.factories.common import asset_key
from barecount.factories.kpi_checks import periods_written
from barecount.specs.kpi import KpiSpec, Tolerance
from barecount.specs.loader import LoadedSql
from barecount.specs.stream import StreamSpec
from barecount.sql_binding import bind_inputs, referenced_tables
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import in_list, quote_ident, sql_literal

RECONCILIATION_CHECK = "reconciliation"

Verdicts = list[tuple[str | None, bool, str]]


def record_sql(
    spec: KpiSpec,
    streams: Mapping[str, StreamSpec],
    sources: SourceFiles,
    calendar: FiscalCalendar,
    years: tuple[int, int],
) -> str:
    """The reconciliation SQL with each `source.<stream>` bound to its extracts on disk."""
    assert spec.reconciliation is not None
    keys = [p.key for p in calendar.periods(*years)]
    relations = {}
    for table in referenced_tables(spec.reconciliation.sql):
        schema, name = table.split(".", 1)
        ref = table.replace(".", "/", 1)
        relations[table] = (
            calendar_table_sql(ref, calendar, years)
            if ref in CALENDAR_TABLES
            else sources.delivered_sql(streams[name], keys)
        )
        assert schema in ("source", "calendar")
    return bind_inputs(spec.reconciliation.sql, relations)


def _difference_allowed(record: Decimal, tolerance: Tolerance) -> Decimal:
    return Decimal(str(tolerance.absolute)) + Decimal(str(tolerance.relative)) * abs(record)


def _number(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def compare_with_record(
    conn: duckdb.DuckDBPyConnection, item: LoadedSql, record: str, periods: Sequence[str], org: str
) -> Verdicts:
    """Each period: every KPI row against the system of record's row with the same dimensions."""
    spec = item.spec
    assert isinstance(spec, KpiSpec) and spec.reconciliation is not None
    keys = ["fiscal_period", *spec.dimensions]
    measures = spec.measure_columns
    columns = ", ".join(quote_ident(c) for c in (*keys, *measures))
    joined_on = " AND ".join(f"k.{quote_ident(c)} IS NOT DISTINCT FROM r.{quote_ident(c)}" for c in keys)
    rows = conn.execute(
        f"WITH k AS (SELECT {columns} FROM kpi.{quote_ident(item.name)} "
        f"WHERE x_org_slug = {sql_literal(org)} AND fiscal_period IN {in_list(periods)}), "
        f"r AS (SELECT {columns} FROM ({record}) AS record WHERE fiscal_period IN {in_list(periods)}) "
        f"SELECT {', '.join(f'coalesce(k.{quote_ident(c)}, r.{quote_ident(c)})' for c in keys)}, "
        f"k.fiscal_period IS NOT NULL, r.fiscal_period IS NOT NULL, "
        f"{', '.join(f'k.{quote_ident(m)}, r.{quote_ident(m)}' for m in measures)} "
        f"FROM k FULL OUTER JOIN r ON {joined_on}"
    ).fetchall()
    problems: dict[str, list[str]] = {p: [] for p in periods}
    largest: dict[str, Decimal] = {p: Decimal(0) for p in periods}
    for row in rows:
        period, dims = str(row[0]), row[1 : len(keys)]
        in_kpi, in_record = row[len(keys)], row[len(keys) + 1]
        label = f" for {', '.join(str(d) for d in dims)}" if dims else ""
        if not in_record:
            problems[period].append(f"the KPI has a row{label} the system of record has not")
            continue
        if not in_kpi:
            problems[period].append(f"the system of record has a row{label} the KPI has not")
            continue
        values = row[len(keys) + 2 :]
        for index, measure in enumerate(measures):
            ours, theirs = _number(values[2 * index]), _number(values[2 * index + 1])
            if ours is None or theirs is None:
                if ours is not theirs:
                    problems[period].append(f"{measure}{label}: {ours} vs {theirs} in the system of record")
                continue
            difference = abs(ours - theirs)
            largest[period] = max(largest[period], difference)
            allowed = _difference_allowed(theirs, spec.reconciliation.tolerance)
            if difference > allowed:
                problems[period].append(
                    f"{measure}{label}: {ours:,} vs {theirs:,} in the system of record "
                    f"(difference {difference:,}, allowed {allowed:,})"
                )
    return [
        (p, False, "; ".join(problems[p]))
        if problems[p]
        else (p, True, f"agrees with the system of record (largest difference {largest[p]:,})")
        for p in periods
    ]


def build_reconciliation_check(
    item: LoadedSql, streams: Mapping[str, StreamSpec], org: str
) -> dg.AssetChecksDefinition:
    """`reconciliation` on kpi/<id>: the KPI against its recomputation from the source extracts, per period."""
    spec = item.spec
    assert isinstance(spec, KpiSpec) and spec.reconciliation is not None
    tolerance = spec.reconciliation.tolerance

    @dg.asset_check(
        asset=asset_key(item.asset_ref),
        name=RECONCILIATION_CHECK,
        blocking=True,
        description=(
            f"{spec.label} {spec.version} agrees with the system of record: {spec.reconciliation.description} "
            f"(tolerance: absolute {tolerance.absolute:g}, relative {tolerance.relative:g})."
        ),
    )
    def reconciliation(
        context: dg.AssetCheckExecutionContext,
        warehouse: DuckDBWarehouse,
        fiscal_calendar: FiscalCalendarResource,
        sources: SourceFiles,
    ) -> dg.AssetCheckResult:
        run_id = context.run.run_id
        calendar = fiscal_calendar.calendar()
        years = (fiscal_calendar.first_year, fiscal_calendar.last_year)
        record = record_sql(spec, streams, sources, calendar, years)
        with warehouse.get_connection() as conn:
            periods = periods_written(conn, item.asset_ref, calendar, run_id)
            verdicts = compare_with_record(conn, item, record, periods, org) if periods else []
            return settle_gate(
                conn,
                RECONCILIATION_CHECK,
                item.asset_ref,
                run_id,
                verdicts,
                {
                    "failures": dg.MetadataValue.json({str(p): d for p, ok, d in verdicts if not ok}),
                    "record_sql": dg.MetadataValue.md(f"```sql\n{spec.reconciliation.sql.strip()}\n```"),
                },
                f"agree with the system of record for {item.name}",
            )

    return reconciliation

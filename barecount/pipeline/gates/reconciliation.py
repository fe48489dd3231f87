"""The `reconciliation` gate of a KPI: its numbers recomputed from the system of record must agree.

The reconciliation SQL reads the source extracts as delivered (`source.<stream>`), not Raw, so a row
lost or changed anywhere between the source and the KPI shows up as a difference. It runs in the
warehouse over the periods the run wrote; only the few KPI rows come back to be compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from barecount.calendar import FiscalCalendar
from barecount.catalog.loader import LoadedSql
from barecount.pipeline.connectors import SourceFiles
from barecount.pipeline.gates import GateVerdict, Verdicts, settle
from barecount.pipeline.scope import RunScope
from barecount.specs.kpi import KpiSpec, Tolerance
from barecount.specs.stream import StreamSpec
from barecount.sql.binding import bind_inputs, referenced_tables
from barecount.sql.calendar_tables import CALENDAR_TABLES, calendar_table_sql
from barecount.sql.relation import in_list, quote_ident, sql_literal
from barecount.warehouse.staging import staged

RECONCILIATION_CHECK = "reconciliation"


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


def compare_with_record(scope: RunScope, item: LoadedSql, record: str, periods: Sequence[str]) -> Verdicts:
    """Each period: every KPI row against the system of record's row with the same dimensions."""
    spec = item.spec
    assert isinstance(spec, KpiSpec) and spec.reconciliation is not None
    keys = ["fiscal_period", *spec.dimensions]
    measures = spec.measure_columns
    columns = ", ".join(quote_ident(c) for c in (*keys, *measures))
    joined_on = " AND ".join(f"k.{quote_ident(c)} IS NOT DISTINCT FROM r.{quote_ident(c)}" for c in keys)
    org = scope.org_slug
    rows = scope.conn.execute(
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


def judge_reconciliation(
    scope: RunScope, item: LoadedSql, streams: Mapping[str, StreamSpec], written: Sequence[str]
) -> GateVerdict:
    """`reconciliation` on the partitions of kpi/<id> the run wrote: the KPI against its recomputation from
    the source extracts as delivered."""
    spec = item.spec
    assert isinstance(spec, KpiSpec) and spec.reconciliation is not None
    record = staged(
        scope.conn,
        f"record_{item.name}",
        lambda local: record_sql(spec, streams, scope.sources.files, scope.calendar, scope.years),  # type: ignore[arg-type]
    )
    verdicts = compare_with_record(scope, item, record, written) if written else []
    return settle(
        scope,
        RECONCILIATION_CHECK,
        item.asset_ref,
        verdicts,
        f"agree with the system of record for {item.name}",
        {"failures": {str(p): d for p, ok, d in verdicts if not ok}},
        {"record_sql": f"```sql\n{spec.reconciliation.sql.strip()}\n```"},
    )

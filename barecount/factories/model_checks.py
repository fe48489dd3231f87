"""`model_tests` on gdp/<model>: the model's data tests on the rows each run writes, period by period.

The primary key is always unique (per period for a partitioned model); the YAML adds `not_null` and
`accepted_values`. All of it is one GROUP BY in the warehouse; a period that fails is held back from the
steps after it in the same run, like any gate.
"""

import dagster as dg
import duckdb

from barecount.calendar.partitions import FiscalCalendarResource
from barecount.factories.checks import settle_gate
from barecount.factories.common import asset_key
from barecount.factories.kpi_checks import periods_written
from barecount.specs.loader import LoadedSql
from barecount.specs.model import ModelSpec
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import PARTITION_COLUMN, quote_ident, sql_literal

MODEL_TESTS_CHECK = "model_tests"


def _tests_sql(spec: ModelSpec) -> tuple[list[str], list[str]]:
    """The failure counts to compute per period, and what each one means."""
    key = ", ".join(quote_ident(c) for c in spec.primary_key)
    counts = [f"count(*) - count(DISTINCT ({key}))"]
    meanings = [f"duplicate primary key ({', '.join(spec.primary_key)})"]
    for column in spec.tests.not_null:
        counts.append(f"count(*) FILTER (WHERE {quote_ident(column)} IS NULL)")
        meanings.append(f"{column} is NULL")
    for column, values in spec.tests.accepted_values.items():
        allowed = ", ".join(sql_literal(v) for v in values)
        counts.append(
            f"count(*) FILTER (WHERE {quote_ident(column)} IS NULL OR {quote_ident(column)} NOT IN ({allowed}))"
        )
        meanings.append(f"{column} not in {values}")
    return counts, meanings


def run_model_tests(
    conn: duckdb.DuckDBPyConnection, item: LoadedSql, periods: list[str | None], run_id: str
) -> list[tuple[str | None, bool, str]]:
    """Each period `run_id` wrote: passed, or the rows that fail each test."""
    spec = item.spec
    assert isinstance(spec, ModelSpec)
    counts, meanings = _tests_sql(spec)
    partition = PARTITION_COLUMN if spec.partitioned else "NULL"
    table = f"gdp.{quote_ident(spec.name)}"
    found = {
        row[0]: row[1:]
        for row in conn.execute(
            f"SELECT {partition}, {', '.join(counts)} FROM {table} WHERE x_run_id = ? GROUP BY ALL", [run_id]
        ).fetchall()
    }
    passing = (0,) * len(counts)  # a period that wrote no rows breaks no test
    results: list[tuple[str | None, bool, str]] = []
    for period in periods:
        failing = [
            f"{n:,} row(s): {meaning}" for n, meaning in zip(found.get(period, passing), meanings, strict=True) if n
        ]
        passed = not failing
        results.append((period, passed, "; ".join(failing) if failing else f"{len(counts)} test(s) passed"))
    return results


def build_model_tests_check(item: LoadedSql) -> dg.AssetChecksDefinition:
    spec = item.spec
    assert isinstance(spec, ModelSpec)
    _, meanings = _tests_sql(spec)

    @dg.asset_check(
        asset=asset_key(item.asset_ref),
        name=MODEL_TESTS_CHECK,
        blocking=True,
        description=f"gdp.{spec.name} passes its data tests on every period written: {'; '.join(meanings)}.",
    )
    def model_tests(
        context: dg.AssetCheckExecutionContext, warehouse: DuckDBWarehouse, fiscal_calendar: FiscalCalendarResource
    ) -> dg.AssetCheckResult:
        run_id = context.run.run_id
        with warehouse.get_connection() as conn:
            periods: list[str | None] = (
                list(periods_written(conn, item.asset_ref, fiscal_calendar.calendar(), run_id))
                if spec.partitioned
                else [None]
            )
            results = run_model_tests(conn, item, periods, run_id)
            return settle_gate(
                conn,
                MODEL_TESTS_CHECK,
                item.asset_ref,
                run_id,
                results,
                {"failures": dg.MetadataValue.json({str(p): d for p, ok, d in results if not ok})},
                f"pass the data tests of gdp.{spec.name}",
            )

    return model_tests

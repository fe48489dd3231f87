"""`model_tests` on gdp/<model>: the model's data tests on the rows each run writes, period by period.

The primary key is always unique (per period for a partitioned model); the YAML adds `not_null` and
`accepted_values`. All of it is one GROUP BY in the warehouse; a period that fails is held back from
what the rest of the run builds from it, like any gate.
"""

from __future__ import annotations

from collections.abc import Sequence

from barecount.catalog.loader import LoadedSql
from barecount.pipeline.gates import GateVerdict, Verdicts, settle
from barecount.pipeline.scope import RunScope
from barecount.specs.model import ModelSpec
from barecount.sql.relation import PARTITION_COLUMN, quote_ident, sql_literal

MODEL_TESTS_CHECK = "model_tests"


def model_tests_sql(spec: ModelSpec) -> tuple[list[str], list[str]]:
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


def run_model_tests(scope: RunScope, item: LoadedSql, periods: Sequence[str | None]) -> Verdicts:
    """Each period the run wrote: passed, or the rows that fail each test."""
    spec = item.spec
    assert isinstance(spec, ModelSpec)
    counts, meanings = model_tests_sql(spec)
    partition = PARTITION_COLUMN if spec.partitioned else "NULL"
    table = f"gdp.{quote_ident(spec.name)}"
    found = {
        row[0]: row[1:]
        for row in scope.conn.execute(
            f"SELECT {partition}, {', '.join(counts)} FROM {table} WHERE x_run_id = ? GROUP BY ALL", [scope.run_id]
        ).fetchall()
    }
    passing = (0,) * len(counts)  # a period that wrote no rows breaks no test
    results: Verdicts = []
    for period in periods:
        failing = [
            f"{n:,} row(s): {meaning}" for n, meaning in zip(found.get(period, passing), meanings, strict=True) if n
        ]
        results.append((period, not failing, "; ".join(failing) if failing else f"{len(counts)} test(s) passed"))
    return results


def judge_model(scope: RunScope, item: LoadedSql, written: Sequence[str | None]) -> GateVerdict:
    """`model_tests` on the partitions of gdp/<model> the run wrote."""
    results = run_model_tests(scope, item, written) if written else []
    return settle(
        scope,
        MODEL_TESTS_CHECK,
        item.asset_ref,
        results,
        f"pass the data tests of gdp.{item.name}",
        {"failures": {str(p): d for p, ok, d in results if not ok}},
    )

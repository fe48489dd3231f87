"""Build a GDP model or a KPI from its SQL, publish a KPI's passing periods, write the calendar tables.

A model reads each declared input as a partition-filtered relation: the periods it builds (and, for a model
that takes late rows, the next ones, whose extracts carry them). A period that an input left alone in this
run, or that a contract blocks anywhere upstream, is left alone here too and read from no input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import duckdb

from barecount.catalog.loader import LoadedSql
from barecount.evidence import holds, ledger
from barecount.pipeline.gates import GateVerdict
from barecount.pipeline.gates.anomaly import judge_anomalies
from barecount.pipeline.gates.model_tests import judge_model
from barecount.pipeline.gates.reconciliation import RECONCILIATION_CHECK, judge_reconciliation
from barecount.pipeline.gates.thresholds import THRESHOLD_CHECK, judge_thresholds
from barecount.pipeline.materialize import Materialized, materialize, table_of
from barecount.pipeline.scope import RunScope
from barecount.specs.kpi import KpiSpec
from barecount.specs.model import ModelSpec
from barecount.specs.stream import StreamSpec
from barecount.sql.binding import bind_inputs
from barecount.sql.calendar_tables import CALENDAR_TABLES, calendar_table_sql
from barecount.sql.hashing import code_version
from barecount.sql.pii import mask_sql, masking_variables
from barecount.sql.relation import (
    INTERNAL_CREDENTIAL,
    PARTITION_COLUMN,
    HeldBack,
    SqlRelation,
    TableRef,
    in_list,
    quote_ident,
    sql_literal,
)
from barecount.warehouse.staging import staged


@dataclass(frozen=True)
class Built:
    """A model or KPI written, and its gates' verdicts."""

    written: Materialized
    gates: tuple[GateVerdict, ...]
    values: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    """A KPI's numbers per period it holds after the write (see `kpi_values`)."""


def _versioned_spec(item: LoadedSql) -> str:
    """The spec as its versions see it: without the anomaly rule, which scores the rows and changes none (a KPI
    given one is not rebuilt for it)."""
    return item.spec.model_dump_json(exclude={"anomaly"})


def sql_version(item: LoadedSql) -> str:
    """The code version of a model or KPI: its spec and its SQL."""
    return code_version(_versioned_spec(item), item.sql)


def published_version(item: LoadedSql) -> str:
    return code_version("published", _versioned_spec(item))


def is_partitioned(item: LoadedSql) -> bool:
    return True if isinstance(item.spec, KpiSpec) else item.spec.partitioned


def late_periods(item: LoadedSql) -> int:
    return item.spec.late_periods if isinstance(item.spec, ModelSpec) else 0


def gates_of(spec: KpiSpec) -> list[str]:
    """The blocking checks a KPI declares, each of which must pass before a partition is published."""
    declared = {THRESHOLD_CHECK: spec.thresholds, RECONCILIATION_CHECK: spec.reconciliation}
    return [gate for gate, rule in declared.items() if rule is not None]


def render_sql(item: LoadedSql, inputs: Mapping[str, TableRef]) -> str:
    """The model's SQL with each declared input replaced by its relation; KPIs get their version column."""
    relations = {f"{ref.schema}.{ref.table}": ref.select_sql() for ref in inputs.values()}
    sql = bind_inputs(item.sql, relations)
    if isinstance(item.spec, ModelSpec):
        sql = mask_sql(sql, item.spec.pii)
    if isinstance(item.spec, KpiSpec):
        sql = f"SELECT kpi.*, {sql_literal(item.spec.version)} AS kpi_version FROM (\n{sql}\n) AS kpi"
    return sql


def input_ref(
    scope: RunScope,
    asset: str,
    keys: Sequence[str] | None,
    ancestors: Mapping[str, frozenset[str]],
) -> TableRef:
    """Input `asset` read for the periods `keys` (None: the whole table), without the periods it left alone in
    this run or that a contract blocks anywhere upstream of it (whichever run asks: CLI, UI, backfill, sensor)."""
    schema, table = table_of(asset)
    if keys is None:
        return TableRef(schema=schema, table=table, org_slug=scope.org_slug)
    held = scope.left_alone(asset)
    for key, why in scope.blocked_upstream(ancestors.get(asset, frozenset()) | {asset}).items():
        held.setdefault(key, why)
    read = tuple(k for k in keys if k not in held)
    held = {k: v for k, v in held.items() if k in keys}
    return TableRef(schema=schema, table=table, org_slug=scope.org_slug, partition_keys=read, held_back=held)


def read_with_late(keys: Sequence[str], late: int, active: Sequence[str]) -> list[str]:
    """The input periods behind `keys`: each period and the `late` periods after it (which carry its late rows),
    in calendar order. Only `active` periods (in calendar order) are read: a period past them is no partition,
    and rows left in it (an extract since withdrawn) are nobody's input."""
    if not late:
        return list(keys)
    position = {k: i for i, k in enumerate(active)}
    wanted = {j for k in keys for j in range(position[k], min(position[k] + late + 1, len(active)))}
    return [active[j] for j in sorted(wanted)]


def written_in_run(scope: RunScope, asset: str) -> list[str]:
    """The partitions of `asset` this run wrote, in calendar order (what its gates judge)."""
    entries = ledger.read_entries(scope.conn, asset, run_id=scope.run_id, kind="materialization")
    return scope.sort_keys({str(e.partition) for e in entries if e.partition is not None})


def build_sql(
    scope: RunScope,
    item: LoadedSql,
    keys: Sequence[str] | None,
    partitioned_refs: frozenset[str],
    ancestors: Mapping[str, frozenset[str]],
    streams: Mapping[str, StreamSpec],
) -> Built:
    """Write `gdp/<model>` or `kpi/<id>` for the periods `keys` (None: unpartitioned), then judge its gates."""
    spec = item.spec
    partitioned = is_partitioned(item)
    own = list(keys) if partitioned and keys is not None else []
    late = late_periods(item)
    read = read_with_late(own, late, scope.partition_keys) if partitioned else None
    inputs = {
        dep: input_ref(scope, dep, read if dep in partitioned_refs else None, ancestors) for dep in spec.depends_on
    }
    # a period an input left alone in this run is left as it was here too, and read from no input
    held = {
        k: f"{ref.schema}/{ref.table} was held back: {why}"
        for ref in inputs.values()
        for k, why in ref.held_back.items()
    }
    if held and partitioned:
        inputs = {
            name: ref
            if ref.partition_keys is None
            else replace(ref, partition_keys=tuple(k for k in ref.partition_keys if k not in held))
            for name, ref in inputs.items()
        }
    sql = render_sql(item, inputs)
    if late:  # later extracts also hold rows of later periods: those are written when their own period is
        placed = in_list([k for k in own if k not in held])
        sql = f"SELECT * FROM (\n{sql}\n) AS placed WHERE {PARTITION_COLUMN} IN {placed}"
    relation = SqlRelation(
        sql=sql,
        pipeline_id=item.asset_ref.replace("/", "."),
        credential_id=INTERNAL_CREDENTIAL,
        code_version=sql_version(item),
        evidence={"kpi_version": spec.version} if isinstance(spec, KpiSpec) else {},
        inputs={f"{ref.schema}/{ref.table}": ref.partition_keys for ref in inputs.values()},
        held_back={k: HeldBack("hold", why) for k, why in held.items() if k in own},
        late_periods=late,
        variables=masking_variables(item.name, spec.pii) if isinstance(spec, ModelSpec) else {},
    )
    written = materialize(scope, item.asset_ref, relation, own if partitioned else None)
    gates: list[GateVerdict] = []
    if isinstance(spec, ModelSpec):
        gates.append(judge_model(scope, item, written_in_run(scope, item.asset_ref) if partitioned else [None]))
    else:
        judged = written_in_run(scope, item.asset_ref)
        unchanged = [k for k in written.unchanged if k is not None]
        if spec.thresholds is not None:
            gates.append(judge_thresholds(scope, item, judged, unchanged))
        if spec.reconciliation is not None:
            gates.append(judge_reconciliation(scope, item, streams, judged))
        if spec.anomaly is not None:
            gates.append(judge_anomalies(scope, item, judged, unchanged))
        return Built(written, tuple(gates), kpi_values(scope, item, [k for k in own if k not in written.held]))
    return Built(written, tuple(gates))


def kpi_values(scope: RunScope, item: LoadedSql, periods: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Period -> the KPI's numbers by name, read back from kpi/<id>, for people and for charts over periods.

    A one-measure KPI is named by its label and unit ("Net revenue (USD)"); a multi-measure one by each
    measure; a KPI with dimensions by its judged measure per combination ("avg_price [A / F]").
    """
    spec = item.spec
    assert isinstance(spec, KpiSpec)
    if not periods:
        return {}
    dims = [quote_ident(d) for d in spec.dimensions]
    measures = [spec.judged_measure] if dims else spec.measure_columns
    rows = scope.conn.execute(
        f"SELECT fiscal_period, {', '.join(quote_ident(m) for m in measures)}"
        f"{''.join(', ' + d for d in dims)} FROM kpi.{quote_ident(item.name)} "
        f"WHERE x_org_slug = {sql_literal(scope.org_slug)} AND fiscal_period IN {in_list(periods)} ORDER BY ALL"
    ).fetchall()
    found: dict[str, dict[str, float | None]] = {}
    for period, *numbers in rows:
        values, combination = numbers[: len(measures)], numbers[len(measures) :]
        for measure, value in zip(measures, values, strict=True):
            if dims:
                name = f"{measure} [{' / '.join(str(c) for c in combination)}]"
            elif spec.measures:
                name = measure
            else:
                name = f"{spec.label} ({spec.unit})"
            found.setdefault(str(period), {})[name] = None if value is None else float(value)
    return found


def not_publishable(
    conn: duckdb.DuckDBPyConnection, kpi_asset: str, gates: list[str], periods: Sequence[str]
) -> dict[str, str]:
    """Period -> why, for each of `periods` whose newest verdict of some gate failed or that a gate never judged."""
    if not gates or not periods:
        return {}
    rows = (
        conn.execute(
            "SELECT gate, partition, arg_max(passed, checked_at), arg_max(detail, checked_at) "
            f"FROM {holds.GATE_RESULTS_TABLE} WHERE gate IN {in_list(gates)} AND asset = ? "
            f"AND partition IN {in_list(periods)} GROUP BY ALL",
            [kpi_asset],
        ).fetchall()
        if holds.gate_results_exist(conn)
        else []
    )
    latest = {(str(gate), str(p)): (bool(ok), str(detail)) for gate, p, ok, detail in rows}
    reasons: dict[str, str] = {}
    for period in periods:
        why = [
            f"failed its {gate}: {latest[gate, period][1]}" if (gate, period) in latest else f"no {gate} verdict yet"
            for gate in gates
            if not latest.get((gate, period), (False, ""))[0]
        ]
        if why:
            reasons[period] = f"{kpi_asset} {period} " + "; ".join(why)
    return reasons


def publish(
    scope: RunScope, item: LoadedSql, keys: Sequence[str], ancestors: Mapping[str, frozenset[str]]
) -> Materialized:
    """`published/<kpi>`: the periods of kpi/<id> whose latest verdicts of every gate passed, whatever run gave
    them. Dagster blocks downstream only within one run, so publication asks the evidence itself; a period
    that failed (or was never judged) is held back and published keeps its previous rows, if any."""
    spec = item.spec
    assert isinstance(spec, KpiSpec)
    kpi = input_ref(scope, item.asset_ref, keys, ancestors)
    periods = kpi.partition_keys or ()
    held = {p: HeldBack("hold", why) for p, why in kpi.held_back.items()}
    held |= {
        p: HeldBack("hold", why)
        for p, why in not_publishable(scope.conn, item.asset_ref, gates_of(spec), periods).items()
    }
    ready = TableRef(kpi.schema, kpi.table, kpi.org_slug, tuple(p for p in periods if p not in held))
    stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    relation = SqlRelation(
        # the KPI's lineage columns are stamped anew by the writer; published_at is one instant per run
        sql=f"SELECT kpi.*, TIMESTAMP '{stamp}' AS published_at FROM ({ready.select_sql()}) AS kpi",
        pipeline_id=f"published.{spec.id}",
        credential_id=INTERNAL_CREDENTIAL,
        code_version=published_version(item),
        evidence={"kpi_version": spec.version},
        inputs={item.asset_ref: ready.partition_keys},
        held_back=held,
        unfingerprinted=("published_at",),
    )
    return materialize(scope, f"published/{spec.id}", relation, keys)


def write_calendar_table(scope: RunScope, ref: str) -> Materialized:
    """`calendar/<name>`: the fiscal calendar as a table, for SQL (an unpartitioned snapshot)."""
    sql = calendar_table_sql(ref, scope.calendar, scope.years)
    relation = SqlRelation(
        sql=staged(scope.conn, ref.replace("/", "_"), lambda local: sql),
        pipeline_id=ref.replace("/", "."),
        credential_id=INTERNAL_CREDENTIAL,
        code_version=code_version(sql),
    )
    assert ref in CALENDAR_TABLES
    return materialize(scope, ref, relation, None)

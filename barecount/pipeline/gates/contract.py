"""The gates of every raw stream, judged in its landing: nothing lost at the door (`rows_accounted`) and the
landed rows hold what the contract promises (`conforms_to_contract`, the contract as a pandera schema run
inside DuckDB)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from barecount.catalog.loader import LoadedStream
from barecount.contracts import ContractRegistry
from barecount.evidence import ledger
from barecount.pipeline.gates import GateVerdict, Verdicts, settle
from barecount.pipeline.gates.freshness import judge_freshness
from barecount.pipeline.scope import RunScope
from barecount.sql.relation import quote_ident
from barecount.warehouse.catalog import table_columns
from barecount.warehouse.connection import on_bigquery

SCHEMA_CHECK = "schema_approved"
ACCOUNTING_CHECK = "rows_accounted"
CONTRACT_CHECK = "conforms_to_contract"

if TYPE_CHECKING:
    import ibis
    import ibis.expr.datatypes as dt
    from pandera.ibis import DataFrameSchema


def raw_gates(scope: RunScope, registry: ContractRegistry, stream: LoadedStream) -> list[GateVerdict]:
    """`rows_accounted` and `conforms_to_contract` on what the run wrote to raw/<stream>, and `freshness` where
    its contract has a latency SLA.

    A landing that wrote nothing (every period blocked) still says that nothing was lost, instead of
    leaving the gates unevaluated.
    """
    judged = [
        rows_accounted(scope, stream),
        settle(
            scope,
            CONTRACT_CHECK,
            stream.asset_ref,
            contract_conformance(scope, registry, stream),
            f"conform to {stream.spec.contract}",
        ),
    ]
    fresh = judge_freshness(scope, registry, stream)
    return judged + ([fresh] if fresh is not None else [])


def rows_accounted(scope: RunScope, stream: LoadedStream) -> GateVerdict:
    """Rows in = rows landed + rows quarantined, per period written, by the ledger and by the tables."""
    conn, run_id, name = scope.conn, scope.run_id, stream.spec.name
    period = "fiscal_period" if stream.spec.partitioned else "NULL"
    written = ledger.read_entries(conn, stream.asset_ref, run_id=run_id, kind="materialization")
    counted: dict[str, dict[str | None, int]] = {"raw": {}, "quarantine": {}}
    if written:  # when nothing landed (every period blocked), the tables may not even exist yet
        for schema in counted:
            rows = conn.execute(
                f"SELECT {period}, count(*) FROM {schema}.{quote_ident(name)} WHERE x_run_id = ? GROUP BY ALL",
                [run_id],
            ).fetchall()
            counted[schema] = {p: int(n) for p, n in rows}
    results: Verdicts = []
    for entry in written:
        f = entry.facts
        stored = (counted["raw"].get(entry.partition, 0), counted["quarantine"].get(entry.partition, 0))
        passed = f["rows_in"] == f["rows_landed"] + f["rows_quarantined"] and stored == (
            f["rows_landed"],
            f["rows_quarantined"],
        )
        detail = (
            f"{f['rows_in']} in = {f['rows_landed']} landed + {f['rows_quarantined']} quarantined; "
            f"tables hold {stored[0]} + {stored[1]}"
        )
        results.append((entry.partition, passed, detail))
    return settle(
        scope,
        ACCOUNTING_CHECK,
        stream.asset_ref,
        results,
        "fully accounted for",
        {
            "rows_in": sum(int(e.facts["rows_in"]) for e in written),
            "rows_quarantined": sum(int(e.facts["rows_quarantined"]) for e in written),
        },
    )


def contract_conformance(scope: RunScope, registry: ContractRegistry, stream: LoadedStream) -> Verdicts:
    """(partition, passed, detail) for each partition of raw.<stream> that the run landed."""
    conn, run_id = scope.conn, scope.run_id
    contract_id, partitioned = stream.spec.contract, stream.spec.partitioned
    written: dict[str, list[str | None]] = {}
    for entry in ledger.read_entries(conn, stream.asset_ref, run_id=run_id, kind="materialization"):
        written.setdefault(str(entry.facts["contract_version"]), []).append(entry.partition)
    if not written:  # nothing landed (every period blocked): the table may not even exist yet
        return []
    if on_bigquery(conn):
        return _conformance_in_sql(scope, registry, stream, written)
    # pandera and ibis cost a second to import: only runs that check landed rows pay for them
    import ibis

    from barecount.contracts.pandera_schema import contract_schema

    table = ibis.duckdb.from_connection(conn).table(stream.spec.name, database="raw")
    results: Verdicts = []
    for version, keys in written.items():
        contract = registry.version(contract_id, version)
        landed = table.filter((table.x_run_id == run_id) & (table.x_contract_version == version))
        if _violations(contract_schema(contract, partitioned, one_query=True), landed) is None:
            results += [(k, True, f"conforms to {contract_id} {version}") for k in keys]
            continue
        # only on failure: find the periods at fault, one by one, and which rules they broke
        schema = contract_schema(contract, partitioned)
        for key in keys:
            found = _violations(schema, landed.filter(landed.fiscal_period == key) if partitioned else landed)
            results.append((key, found is None, found or f"conforms to {contract_id} {version}"))
    return results


def _conformance_in_sql(
    scope: RunScope, registry: ContractRegistry, stream: LoadedStream, written: dict[str, list[str | None]]
) -> Verdicts:
    """The contract's schema and rules judged in SQL where pandera does not run (BigQuery): the table's columns and
    types from the catalog, then the rows breaking each rule, per period, in two queries per contract version."""
    import ibis

    from barecount.contracts.pandera_schema import landed_types, rule_breaks

    conn, name, partitioned = scope.conn, stream.spec.name, stream.spec.partitioned
    columns = {c.name: c.type for c in table_columns(conn, "raw", name) or []}
    results: Verdicts = []
    for version, keys in written.items():
        contract = registry.version(stream.spec.contract, version)
        expected = landed_types(contract, partitioned)
        table = ibis.table(expected, name=name, database="raw")
        landed = table.filter((table.x_run_id == scope.run_id) & (table.x_contract_version == version))
        found: dict[str | None, list[str]] = {key: _column_problems(expected, columns) for key in keys}
        breaks = rule_breaks(contract, partitioned, landed)
        for row in conn.execute(breaks.rules_sql).fetchall() if not any(found.values()) else []:
            key, counts = (row[0], row[1:]) if partitioned else (None, row)
            found.setdefault(key, []).extend(
                f"{rule} ({n} row(s))" for rule, n in zip(breaks.rules, counts, strict=True) if n
            )
        for row in conn.execute(breaks.keys_sql).fetchall() if breaks.keys_sql and not any(found.values()) else []:
            key, repeated = (row[0], row[1]) if partitioned else (None, row[0])
            if repeated:
                found.setdefault(key, []).append(f"key: DUPLICATES ({repeated} value(s) repeat)")
        for key in keys:
            problems = found.get(key, [])
            results.append((key, not problems, "; ".join(sorted(problems)) or f"conforms to {contract.id} {version}"))
    return results


UNPARAMETERIZED_NUMERIC = (38, 9)
"""The precision and scale of BigQuery's NUMERIC as its DuckDB type (`warehouse.bigquery.DUCKDB_TYPES`)."""


def _column_problems(expected: Mapping[str, dt.DataType], actual: Mapping[str, str]) -> list[str]:
    """What the table's columns lack, add or type otherwise than the contract says."""
    from ibis.backends.sql.datatypes import DuckDBType

    problems = [f"{n}: column_in_dataframe" for n in expected if n not in actual]
    problems += [f"{n}: column_in_schema" for n in actual if n not in expected]
    problems += [
        f"{n}: dtype('{expected[n]}')"
        for n in expected
        if n in actual and not _stored_as(expected[n], DuckDBType.from_string(actual[n]))
    ]
    return problems


def _stored_as(expected: dt.DataType, actual: dt.DataType) -> bool:
    """Whether a column of type `expected` is stored as `actual`: BigQuery keeps every integer as INT64, and a
    table made from a query's columns has plain NUMERIC ones (a query's NUMERIC carries no precision; the values
    keep the scale their cast rounded them to)."""
    if expected.is_integer() and actual.is_integer():
        return True
    if expected.is_decimal() and actual.is_decimal() and (actual.precision, actual.scale) == UNPARAMETERIZED_NUMERIC:
        return True
    return expected.copy(nullable=True) == actual.copy(nullable=True)


def _violations(schema: DataFrameSchema, rows: ibis.Table) -> str | None:
    """None if the rows pass, else which columns broke which checks, and how often."""
    import pandera.errors

    try:
        schema.validate(rows, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        # failure_cases counts the rows behind element-wise checks; `message` names column and check
        rows = Counter(exc.failure_cases["check"].astype(str))
        found = []
        for by_reason in exc.message.values():
            for reason, errors in by_reason.items():
                for error in errors:
                    where = f"key ({', '.join(schema.unique or [])})" if reason == "DUPLICATES" else error["column"]
                    counted = f" ({rows[error['check']]} row(s))" if reason == "DATAFRAME_CHECK" else ""
                    found.append(f"{where}: {error['check']}{counted}")
        return "; ".join(sorted(found))
    return None

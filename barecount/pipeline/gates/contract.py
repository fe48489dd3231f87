"""The gates of every raw stream, judged in its landing: nothing lost at the door (`rows_accounted`) and the
landed rows hold what the contract promises (`conforms_to_contract`: the contract's rules as SQL, and its pandera
schema naming what a failing period broke)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from barecount.catalog.loader import LoadedStream
from barecount.contracts import Contract, ContractRegistry
from barecount.contracts.rules_sql import column_problems, landed_types, rule_breaks
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
    """(partition, passed, detail) for each partition of raw.<stream> that the run landed.

    The contract's columns, types and rules are judged in SQL on every engine: two queries per contract version for
    a landing that passes. On DuckDB, a period found at fault is validated again by the contract's pandera schema,
    whose checks name the column and rule it broke.
    """
    written: dict[str, list[str | None]] = {}
    for entry in ledger.read_entries(scope.conn, stream.asset_ref, run_id=scope.run_id, kind="materialization"):
        written.setdefault(str(entry.facts["contract_version"]), []).append(entry.partition)
    results: Verdicts = []
    for version, keys in written.items():  # nothing landed (every period blocked): no verdict, maybe no table
        contract = registry.version(stream.spec.contract, version)
        found = _problems_in_sql(scope, contract, stream, keys)
        for key in keys:
            problems = "; ".join(sorted(found.get(key, [])))
            if problems and not on_bigquery(scope.conn):
                problems = _named_by_pandera(scope, contract, stream, key) or problems
            results.append((key, not problems, problems or f"conforms to {contract.id} {version}"))
    return results


def _problems_in_sql(
    scope: RunScope, contract: Contract, stream: LoadedStream, keys: list[str | None]
) -> dict[str | None, list[str]]:
    """What each period of `keys` breaks, from the table's columns in the catalog, then the rows breaking each rule
    and the repeated keys counted per period in two queries."""
    conn, name, partitioned = scope.conn, stream.spec.name, stream.spec.partitioned
    columns = {c.name: c.type for c in table_columns(conn, "raw", name) or []}
    expected = landed_types(contract, partitioned)
    found: dict[str | None, list[str]] = {key: column_problems(expected, columns, on_bigquery(conn)) for key in keys}
    if any(found.values()):
        return found
    breaks = rule_breaks(contract, partitioned, f"raw.{quote_ident(name)}")
    landed = [scope.run_id, contract.version]
    for row in conn.execute(breaks.rules_sql, landed).fetchall():
        key, counts = (row[0], row[1:]) if partitioned else (None, row)
        found.setdefault(key, []).extend(
            f"{rule} ({n} row(s))" for rule, n in zip(breaks.rules, counts, strict=True) if n
        )
    for row in conn.execute(breaks.keys_sql, landed).fetchall() if breaks.keys_sql else []:
        key, repeated = (row[0], row[1]) if partitioned else (None, row[0])
        if repeated:
            found.setdefault(key, []).append(f"key: DUPLICATES ({repeated} value(s) repeat)")
    return found


def _named_by_pandera(scope: RunScope, contract: Contract, stream: LoadedStream, key: str | None) -> str | None:
    """Which columns of the period `key` broke which of the contract's pandera checks, and how often (DuckDB)."""
    import ibis

    from barecount.contracts.pandera_schema import contract_schema

    partitioned = stream.spec.partitioned
    table = ibis.duckdb.from_connection(scope.conn).table(stream.spec.name, database="raw")
    landed = table.filter((table.x_run_id == scope.run_id) & (table.x_contract_version == contract.version))
    return _violations(
        contract_schema(contract, partitioned), landed.filter(landed.fiscal_period == key) if partitioned else landed
    )


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

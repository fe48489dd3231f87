"""Asset checks generated from stream manifests: on every raw asset, the accounting gate and the contract
gate (the contract as a pandera schema, run on the landed rows inside DuckDB).

Dagster evaluates a check once for a whole single-run range, so the gate's result is also written per
partition to `evidence.gate_results` (and the ledger), and the check's metadata names failing periods.
"""

from collections import Counter
from typing import TYPE_CHECKING

import dagster as dg
import duckdb

from barecount.factories.common import asset_key
from barecount.ledger import holds, ledger
from barecount.project import ProjectPaths
from barecount.registry import ContractRegistry
from barecount.specs.loader import LoadedStream
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import quote_ident
from barecount.warehouse.writes import transaction

ACCOUNTING_CHECK = "rows_accounted"
CONTRACT_CHECK = "conforms_to_contract"

if TYPE_CHECKING:
    import ibis
    from pandera.ibis import DataFrameSchema


def build_accounting_check(stream: LoadedStream) -> dg.AssetChecksDefinition:
    """`rows_accounted` on raw/<stream>: rows in = rows landed + rows quarantined, for every period written."""
    name = stream.spec.name
    key = asset_key(stream.asset_ref)
    period = "fiscal_period" if stream.spec.partitioned else "NULL"

    @dg.asset_check(
        asset=key,
        name=ACCOUNTING_CHECK,
        blocking=True,
        description=(
            f"Nothing lost at the door: for every period of raw.{name} written by the run, the rows read from the "
            f"extract equal the rows landed in raw.{name} plus the rows held in quarantine.{name}."
        ),
    )
    def rows_accounted(context: dg.AssetCheckExecutionContext, warehouse: DuckDBWarehouse) -> dg.AssetCheckResult:
        run_id = context.run.run_id
        with warehouse.get_connection() as conn:
            counted = {}
            for schema in ("raw", "quarantine"):
                rows = conn.execute(
                    f"SELECT {period}, count(*) FROM {schema}.{quote_ident(name)} WHERE x_run_id = ? GROUP BY ALL",
                    [run_id],
                ).fetchall()
                counted[schema] = {p: int(n) for p, n in rows}
            written = ledger.read_entries(conn, stream.asset_ref, run_id=run_id, kind="materialization")
            results = []
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
            return settle_gate(
                conn,
                ACCOUNTING_CHECK,
                stream.asset_ref,
                run_id,
                results,
                {
                    "rows_in": dg.MetadataValue.int(sum(int(e.facts["rows_in"]) for e in written)),
                    "rows_quarantined": dg.MetadataValue.int(sum(int(e.facts["rows_quarantined"]) for e in written)),
                },
                "fully accounted for",
            )

    return rows_accounted


def settle_gate(
    conn: duckdb.DuckDBPyConnection,
    gate: str,
    asset: str,
    run_id: str,
    results: list[tuple[str | None, bool, str]],
    metadata: dict[str, dg.MetadataValue],
    verdict: str,
) -> dg.AssetCheckResult:
    """Keep a gate's per-period verdicts (evidence.gate_results and the ledger, in one transaction) and turn
    them into the check's result."""
    with transaction(conn):
        holds.record_gate_results(conn, gate, asset, run_id, results)
        held = holds.held_back(conn, asset, run_id)
    return gate_result(results, held, metadata, verdict)


def gate_result(
    results: list[tuple[str | None, bool, str]],
    held: dict[str, str],
    metadata: dict[str, dg.MetadataValue],
    verdict: str,
) -> dg.AssetCheckResult:
    """A gate's verdict over a range: failing periods named; a warning (not an error) while some periods pass,
    so the steps after it still run and leave just the failing periods alone."""
    failing = [p or "snapshot" for p, ok, _ in results if not ok]
    passed = len(results) - len(failing)
    severity = dg.AssetCheckSeverity.WARN if passed else dg.AssetCheckSeverity.ERROR
    description = f"{passed} of {len(results)} period(s) {verdict}"
    if held:
        description += f"; {len(held)} period(s) held back and not written: {', '.join(sorted(held))}"
    return dg.AssetCheckResult(
        passed=not failing,
        severity=severity,
        metadata={
            "partitions_checked": dg.MetadataValue.int(len(results)),
            "failing_partitions": dg.MetadataValue.json(failing),
            "held_back_partitions": dg.MetadataValue.json(held),
            **metadata,
        },
        description=description,
    )


def build_contract_check(stream: LoadedStream, paths: ProjectPaths) -> dg.AssetChecksDefinition:
    """`conforms_to_contract` on raw/<stream>: the rows the run landed satisfy the contract version they were
    read under (types, nulls, values, ranges, patterns, keys, lineage), checked by pandera in the warehouse."""
    name = stream.spec.name

    @dg.asset_check(
        asset=asset_key(stream.asset_ref),
        name=CONTRACT_CHECK,
        blocking=True,
        description=(
            f"raw.{name} holds what contract {stream.spec.contract} promises: a pandera schema built from the "
            "contract version each period was read under, validated on the run's landed rows inside DuckDB."
        ),
    )
    def conforms_to_contract(context: dg.AssetCheckExecutionContext, warehouse: DuckDBWarehouse) -> dg.AssetCheckResult:
        run_id = context.run.run_id
        with warehouse.get_connection() as conn:
            results = contract_conformance(conn, ContractRegistry.load(paths), stream, run_id)
            return settle_gate(
                conn, CONTRACT_CHECK, stream.asset_ref, run_id, results, {}, f"conform to {stream.spec.contract}"
            )

    return conforms_to_contract


def contract_conformance(
    conn: duckdb.DuckDBPyConnection, registry: ContractRegistry, stream: LoadedStream, run_id: str
) -> list[tuple[str | None, bool, str]]:
    """(partition, passed, detail) for each partition of raw.<stream> that `run_id` landed."""
    # pandera and ibis cost a second to import: only runs that check contracts pay for them
    import ibis

    from barecount.registry.pandera_schema import contract_schema

    contract_id, partitioned = stream.spec.contract, stream.spec.partitioned
    written: dict[str, list[str | None]] = {}
    for entry in ledger.read_entries(conn, stream.asset_ref, run_id=run_id, kind="materialization"):
        written.setdefault(str(entry.facts["contract_version"]), []).append(entry.partition)
    table = ibis.duckdb.from_connection(conn).table(stream.spec.name, database="raw")
    results: list[tuple[str | None, bool, str]] = []
    for version, keys in written.items():
        schema = contract_schema(registry.version(contract_id, version), partitioned)
        landed = table.filter((table.x_run_id == run_id) & (table.x_contract_version == version))
        if _violations(schema, landed) is None:
            results += [(k, True, f"conforms to {contract_id} {version}") for k in keys]
            continue
        # only on failure: find the periods at fault, one by one
        for key in keys:
            found = _violations(schema, landed.filter(landed.fiscal_period == key) if partitioned else landed)
            results.append((key, found is None, found or f"conforms to {contract_id} {version}"))
    return results


def _violations(schema: "DataFrameSchema", rows: "ibis.Table") -> str | None:
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

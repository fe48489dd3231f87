"""Asset checks generated from stream manifests: the accounting gate on every raw asset.

Dagster evaluates a check once for a whole single-run range, so the gate's result is also written per
partition to `evidence.gate_results` (and the ledger), and the check's metadata names failing periods.
"""

import dagster as dg

from barecount.factories.common import asset_key
from barecount.ledger import holds, ledger
from barecount.specs.loader import LoadedStream
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import quote_ident
from barecount.warehouse.writes import transaction

ACCOUNTING_CHECK = "rows_accounted"


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
        with warehouse.get_connection() as conn, transaction(conn):
            counted = {}
            for schema in ("raw", "quarantine"):
                rows = conn.execute(
                    f"SELECT {period}, count(*) FROM {schema}.{quote_ident(name)} WHERE x_run_id = ? GROUP BY ALL",
                    [run_id],
                ).fetchall()
                counted[schema] = {p: int(n) for p, n in rows}
            written = [
                e
                for e in ledger.read_entries(conn, stream.asset_ref)
                if e.run_id == run_id and e.kind == "materialization"
            ]
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
            holds.record_gate_results(conn, ACCOUNTING_CHECK, stream.asset_ref, run_id, results)
            held = holds.held_back(conn, stream.asset_ref, run_id)
        return gate_result(
            results,
            held,
            {
                "rows_in": dg.MetadataValue.int(sum(int(e.facts["rows_in"]) for e in written)),
                "rows_quarantined": dg.MetadataValue.int(sum(int(e.facts["rows_quarantined"]) for e in written)),
            },
            "fully accounted for",
        )

    return rows_accounted


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

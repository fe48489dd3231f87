"""The gates of every raw asset, generated from stream manifests and evaluated in the asset's own step: the
schema gate (it decides what lands), the accounting gate and the contract gate (the contract as a pandera
schema, run on the landed rows inside DuckDB). `settle_gate` serves the model and KPI checks as well.

Dagster evaluates a check once for a whole single-run range, so the gate's result is also written per
partition to `evidence.gate_results` (and the ledger), and the check's metadata names failing periods.
"""

from collections import Counter
from typing import TYPE_CHECKING

import dagster as dg
import duckdb

from barecount.factories.common import asset_key
from barecount.intake import IntakePlan
from barecount.ledger import holds, ledger
from barecount.project import ProjectPaths
from barecount.registry import ContractRegistry
from barecount.rendering import markdown_table
from barecount.specs.loader import LoadedStream
from barecount.warehouse.relation import quote_ident
from barecount.warehouse.writes import transaction

SCHEMA_CHECK = "schema_approved"
ACCOUNTING_CHECK = "rows_accounted"
CONTRACT_CHECK = "conforms_to_contract"

if TYPE_CHECKING:
    import ibis
    from pandera.ibis import DataFrameSchema


def schema_check_spec(stream: LoadedStream) -> dg.AssetCheckSpec:
    """`schema_approved` on raw/<stream>: every period's extract has a shape its contract version allows."""
    contract = stream.spec.contract
    return dg.AssetCheckSpec(
        SCHEMA_CHECK,
        asset=asset_key(stream.asset_ref),
        description=(
            f"Each period's extract has the columns and types contract {contract} allows. A breaking change "
            "(a column removed or renamed, a type that can lose data) blocks the period: nothing of it lands, its "
            "previous rows stay, and a next contract version is drafted. When a data owner approves it (the "
            "approve_contract job, or `barecount contracts approve`), the contract_approval_sensor lands exactly "
            "the blocked periods. An added optional column lands and is reported here."
        ),
    )


def schema_check_result(contract: str, plan: IntakePlan) -> dg.AssetCheckResult:
    """The schema gate's verdict on one read: the blocked and drifted periods, and what changed in each."""
    blocked = [k or "snapshot" for k in plan.blocked]
    read = len(blocked) + sum(len(g.keys) for g in plan.groups)
    drifts = {**plan.drifted, **plan.blocked}
    proposals = sorted({d.proposal for d in plan.blocked.values()})
    if blocked:
        changes = "; ".join(f"{k or 'snapshot'}: {d.describe()}" for k, d in plan.blocked.items())
        description = (
            f"{len(blocked)} of {read} period(s) blocked by schema drift: {', '.join(blocked)}. Approve "
            f"{', '.join(proposals)} to land them; their previous rows are kept until then. Changes: {changes}."
        )
    elif plan.drifted:
        description = (
            f"{read} period(s) read; {len(plan.drifted)} landed with a non-breaking change to {contract}; "
            "a next version is drafted."
        )
    else:
        versions = ", ".join(sorted({g.contract.version for g in plan.groups}))
        description = f"{read} period(s) read, each with the shape of {contract} {versions}."
    metadata: dict[str, dg.MetadataValue] = {
        "partitions_checked": dg.MetadataValue.int(read),
        "blocked_partitions": dg.MetadataValue.text(", ".join(blocked) or "none"),
    }
    if drifts:
        metadata["drift"] = dg.MetadataValue.md(
            markdown_table(
                ("period", "column", "change", "contract", "extract", "breaking"),
                [
                    (
                        key or "snapshot",
                        c.column,
                        c.change,
                        c.before or "-",
                        c.after or "-",
                        "yes" if c.breaking else "no",
                    )
                    for key, drift in drifts.items()
                    for c in drift.changes
                ],
            )
        )
        metadata["proposed_versions"] = dg.MetadataValue.text(", ".join(sorted({d.proposal for d in drifts.values()})))
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=not blocked,
        # a warning while some periods land, so the steps after this one build those periods
        severity=dg.AssetCheckSeverity.WARN if plan.groups else dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


def gate_specs(stream: LoadedStream, paths: ProjectPaths) -> list[dg.AssetCheckSpec]:
    """The three gates of raw/<stream>, evaluated in the asset's own step (see `gate_results`)."""
    name, contract = stream.spec.name, stream.spec.contract
    current = ContractRegistry.load(paths).in_force(contract, None)
    key = asset_key(stream.asset_ref)
    return [
        schema_check_spec(stream),
        dg.AssetCheckSpec(
            ACCOUNTING_CHECK,
            asset=key,
            blocking=True,
            description=(
                f"Nothing lost at the door: for every period of raw.{name} written by the run, the rows read from "
                f"the extract equal the rows landed in raw.{name} plus the rows held in quarantine.{name}."
            ),
        ),
        dg.AssetCheckSpec(
            CONTRACT_CHECK,
            asset=key,
            blocking=True,
            description=(
                f"raw.{name} holds what contract {contract} promises: a pandera schema built from the contract "
                "version each period was read under, validated on the run's landed rows inside DuckDB. Version "
                f"{current.version}: {'; '.join(current.rules()) or 'types only'}; and every column of the version "
                "with its type."
            ),
        ),
    ]


def gate_results(
    conn: duckdb.DuckDBPyConnection, registry: ContractRegistry, stream: LoadedStream, run_id: str
) -> list[dg.AssetCheckResult]:
    """`rows_accounted` and `conforms_to_contract` on what the run wrote to raw/<stream>.

    They run in the asset's step, after its write: 18 steps fewer per run, and a step that lands nothing
    (every period blocked) still says that nothing was lost, instead of leaving two checks unevaluated.
    """
    return [
        _rows_accounted(conn, stream, run_id),
        settle_gate(
            conn,
            CONTRACT_CHECK,
            stream.asset_ref,
            run_id,
            contract_conformance(conn, registry, stream, run_id),
            {},
            f"conform to {stream.spec.contract}",
        ),
    ]


def _rows_accounted(conn: duckdb.DuckDBPyConnection, stream: LoadedStream, run_id: str) -> dg.AssetCheckResult:
    """Rows in = rows landed + rows quarantined, per period written, by the ledger and by the tables."""
    name = stream.spec.name
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
    return gate_result(gate, results, held, metadata, verdict)


def gate_result(
    gate: str,
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
    description = f"{passed} of {len(results)} period(s) {verdict}" if results else "no period written by the run"
    if held:
        description += f"; {len(held)} period(s) held back and not written: {', '.join(sorted(held))}"
    return dg.AssetCheckResult(
        check_name=gate,
        passed=not failing,
        severity=severity,
        metadata={
            "partitions_checked": dg.MetadataValue.int(len(results)),
            "failing_partitions": dg.MetadataValue.md(
                markdown_table(("period", "why"), [(p or "snapshot", why) for p, ok, why in results if not ok])
            ),
            "held_back_partitions": dg.MetadataValue.md(markdown_table(("period", "why"), sorted(held.items()))),
            **metadata,
        },
        description=description,
    )


def contract_conformance(
    conn: duckdb.DuckDBPyConnection, registry: ContractRegistry, stream: LoadedStream, run_id: str
) -> list[tuple[str | None, bool, str]]:
    """(partition, passed, detail) for each partition of raw.<stream> that `run_id` landed."""
    contract_id, partitioned = stream.spec.contract, stream.spec.partitioned
    written: dict[str, list[str | None]] = {}
    for entry in ledger.read_entries(conn, stream.asset_ref, run_id=run_id, kind="materialization"):
        written.setdefault(str(entry.facts["contract_version"]), []).append(entry.partition)
    if not written:  # nothing landed (every period blocked): the table may not even exist yet
        return []
    # pandera and ibis cost a second to import: only runs that check landed rows pay for them
    import ibis

    from barecount.registry.pandera_schema import contract_schema

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

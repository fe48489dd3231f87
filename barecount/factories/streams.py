"""Raw assets from stream manifests: the extract read as SQL, shaped by its contract, landed by the IO manager."""

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg

from barecount.calendar.partitions import FiscalCalendarResource
from barecount.connectors.files import SourceFiles
from barecount.errors import TransientSourceError
from barecount.factories.checks import gate_results, gate_specs, schema_check_result
from barecount.factories.common import asset_key, code_reference, code_version, owners
from barecount.ingestion import (
    ParentKey,
    checked_select,
    landed_tables,
    parent_keys,
    quarantine_split,
    union_of_extracts,
)
from barecount.intake import IntakePlan, plan_intake
from barecount.ledger import holds, ledger
from barecount.project import ProjectPaths
from barecount.registry import Contract, ContractRegistry, fingerprints
from barecount.specs.loader import LoadedStream
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import HeldBack, SqlRelation, schema_hash
from barecount.warehouse.writes import transaction

RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=1.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
"""Transient source errors (an extract still being delivered) are retried after about 1, 3 and 7 seconds."""


def build_stream_asset(
    stream: LoadedStream,
    partitions_def: dg.PartitionsDefinition,
    paths: ProjectPaths,
    stream_by_contract: Mapping[str, str],
    registry: ContractRegistry,
    org_slug: str,
) -> dg.AssetsDefinition:
    """`raw/<stream>`: one period's extract (or a key range of them) in one SELECT over the files.

    The contract registry is read when the asset runs, so a new contract version applies without
    reloading the code location. Each period is read under the contract version in force for it;
    a period whose extract drifted in a breaking way is held back (see `barecount.intake`), as the
    `schema_approved` check, evaluated in this step, reports.
    """
    spec = stream.spec
    version = code_version(spec.model_dump_json())
    # parents land first, so that foreign keys can be checked against their landed rows
    parents = sorted(
        {
            stream_by_contract[parent]
            for _, parent, _ in registry.in_force(spec.contract, None).references()
            if parent in stream_by_contract and stream_by_contract[parent] != spec.name
        }
    )

    @dg.asset(
        key=asset_key(stream.asset_ref),
        deps=[asset_key(f"raw/{parent}") for parent in parents],
        description=spec.description,
        group_name="raw",
        owners=owners(spec.owner),
        tags={"domain": stream.domain},
        kinds={"duckdb", spec.connector.kind},
        partitions_def=partitions_def if spec.partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if spec.partitioned else None,
        code_version=version,
        retry_policy=RETRY_POLICY,
        check_specs=gate_specs(stream, paths),
        metadata={
            "dagster/code_references": code_reference(paths, stream.file, stream.line),
            "source": f"{spec.connector.kind}: {spec.connector.path}",
            "contract": spec.contract,
            "x_pipeline_id": stream.pipeline_id,
            "x_credential_id": spec.credential_id,
        },
    )
    def raw_stream(
        context: dg.AssetExecutionContext,
        sources: SourceFiles,
        warehouse: DuckDBWarehouse,
        fiscal_calendar: FiscalCalendarResource,
    ) -> Iterator[dg.Output[SqlRelation] | dg.AssetCheckResult]:
        try:
            registry = ContractRegistry.load(paths)  # afresh: an approval applies without a code reload
            plan = _plan(context, sources, warehouse, fiscal_calendar, registry)
            held = _held_back(plan)
            if plan.groups:
                yield _read(context, sources, warehouse, plan, held)
        except TransientSourceError as exc:  # retried by the policy, with backoff and jitter
            _record_attempt(context, warehouse, exc, transient=True)
            raise
        except Exception as exc:  # a bad or missing file, refused data: another attempt would fail the same way
            _record_attempt(context, warehouse, exc, transient=False)
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        yield schema_check_result(spec.contract, plan)
        run_id = context.run.run_id
        with warehouse.get_connection() as conn:
            if not plan.groups:  # no write to put them on the record
                with transaction(conn):
                    holds.hold_back(conn, stream.asset_ref, run_id, held)
            yield from gate_results(conn, registry, stream, run_id)
        if not plan.groups:
            # Nothing landed: the step fails, so Dagster shows the periods as failed, not as materialized
            # (it records a materialization for every period of a step that succeeds)
            raise dg.Failure(
                description="; ".join(h.reason for h in held.values()),
                metadata={"blocked_partitions": ", ".join(k or "snapshot" for k in held)},
                allow_retries=False,
            )

    def _record_attempt(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, error: Exception, transient: bool
    ) -> None:
        attempt = context.retry_number + 1
        facts = {
            "attempt": attempt,
            "of": RETRY_POLICY.max_retries + 1,
            "error": f"{type(error).__name__}: {error}",
            "transient": transient,
            "retrying": transient and attempt <= RETRY_POLICY.max_retries,
            "periods": list(context.partition_keys) if spec.partitioned else [],
        }
        with warehouse.get_connection() as conn, transaction(conn):
            ledger.append(conn, [ledger.NewEntry("attempt", stream.asset_ref, None, context.run.run_id, facts)])

    def _plan(
        context: dg.AssetExecutionContext,
        sources: SourceFiles,
        warehouse: DuckDBWarehouse,
        fiscal_calendar: FiscalCalendarResource,
        contracts: ContractRegistry,
    ) -> IntakePlan:
        """Each period's extract against the contract version in force for it."""
        keys = list(context.partition_keys) if spec.partitioned else None
        snapshot_period = "" if keys else fiscal_calendar.calendar().period_of(sources.extract_date(spec)).key
        plan = plan_intake(
            contracts,
            spec.contract,
            sources.describe(spec, keys),
            typed_source=spec.connector.kind == "parquet",
            paths=paths,
            snapshot_period=snapshot_period,
        )
        with warehouse.get_connection() as conn, transaction(conn):
            fingerprints.record_use(conn, plan.contracts, context.run.run_id)
        for key, drift in plan.blocked.items():
            context.log.warning(f"{spec.name} {key or 'snapshot'} blocked by schema drift: {drift.describe()}")
        return plan

    def _held_back(plan: IntakePlan) -> dict[str | None, HeldBack]:
        return {
            key: HeldBack(
                "block",
                f"{spec.contract} {drift.contract.version} blocked by schema drift: {drift.describe()}; "
                f"approve {drift.proposal} to land it",
                drift.facts(),
            )
            for key, drift in plan.blocked.items()
        }

    def _read(
        context: dg.AssetExecutionContext,
        sources: SourceFiles,
        warehouse: DuckDBWarehouse,
        plan: IntakePlan,
        held: dict[str | None, HeldBack],
    ) -> dg.Output[SqlRelation]:
        selects = [
            checked_select(
                group.contract,
                sources.scan_sql(spec, list(group.keys) if spec.partitioned else None),  # type: ignore[arg-type]
                group.source,
                spec.partitioned,
                _parent_keys(group.contract, warehouse),
            )
            for group in plan.groups
        ]
        landed_keys = [k for g in plan.groups for k in g.keys]
        read = sources.fingerprints(spec, [k for k in landed_keys if k is not None] if spec.partitioned else None)
        # the data version is what was read, so Dagster marks what was built from other extracts as stale
        read_under = {str(key): [g.contract.version, read[key]] for g in plan.groups for key in g.keys if key in read}
        data_version = code_version(version, json.dumps(read_under, sort_keys=True))
        retried = {"attempt": context.retry_number + 1} if context.retry_number else {}
        relation = SqlRelation(
            sql=union_of_extracts(selects),
            pipeline_id=stream.pipeline_id,
            credential_id=spec.credential_id,
            data_date=None if spec.partitioned else sources.extract_date(spec),
            quarantine=quarantine_split(plan.contracts, spec.partitioned),
            code_version=version,
            evidence={"contract": spec.contract} | retried,
            checked_against=tuple(f"raw/{parent}" for parent in parents),
            partition_evidence={
                key: {
                    "contract_version": g.contract.version,
                    "source_schema_hash": schema_hash(g.source),
                    "source_files_read": read[key],
                }
                for g in plan.groups
                for key in g.keys
            },
            drifted={key: drift.facts() for key, drift in plan.drifted.items()},
            held_back=held,
        )
        return dg.Output(relation, data_version=dg.DataVersion(data_version))

    def _parent_keys(contract: Contract, warehouse: DuckDBWarehouse) -> list[ParentKey]:
        """The contract's foreign keys as parent tables to check against; the parents must have landed."""
        if not contract.references():
            return []
        if not Path(warehouse.database).exists():
            return parent_keys(contract, spec.name, stream_by_contract, set(), org_slug)
        with warehouse.get_connection(read_only=True) as conn:
            return parent_keys(contract, spec.name, stream_by_contract, landed_tables(conn), org_slug)

    return raw_stream

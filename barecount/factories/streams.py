"""Raw assets from stream manifests: the extract read as SQL, shaped by its contract, landed by the IO manager."""

from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from barecount.connectors.files import SourceFiles
from barecount.errors import RefusedError
from barecount.factories.common import asset_key, code_reference, code_version, owners
from barecount.ingestion import (
    ParentKey,
    checked_select,
    describe_source,
    quarantine_split,
)
from barecount.project import ProjectPaths
from barecount.registry import Contract, ContractRegistry
from barecount.specs.loader import LoadedStream
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import Column, SqlRelation, schema_hash


def build_stream_asset(
    stream: LoadedStream,
    partitions_def: dg.PartitionsDefinition,
    paths: ProjectPaths,
    stream_by_contract: Mapping[str, str],
    registry: ContractRegistry,
) -> dg.AssetsDefinition:
    """`raw/<stream>`: one period's extract (or a key range of them) in one SELECT over the files.

    The contract registry is read when the asset runs, so a new contract version applies without
    reloading the code location. A range whose periods fall under two versions is refused for now.
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
        metadata={
            "dagster/code_references": code_reference(paths, stream.file, stream.line),
            "source": f"{spec.connector.kind}: {spec.connector.path}",
            "contract": spec.contract,
            "x_pipeline_id": stream.pipeline_id,
            "x_credential_id": spec.credential_id,
        },
    )
    def raw_stream(context: dg.AssetExecutionContext, sources: SourceFiles, warehouse: DuckDBWarehouse) -> SqlRelation:
        contracts = ContractRegistry.load(paths)  # afresh: an approval applies without a code reload
        if not spec.partitioned:
            contract = contracts.in_force(spec.contract, None)
            scan = sources.scan_sql(spec, None)
            context.add_output_metadata({"contract_version": contract.version})
            source = describe_source(scan)
            return SqlRelation(
                sql=checked_select(contract, scan, source, False, _parent_keys(contract, warehouse)),
                pipeline_id=stream.pipeline_id,
                credential_id=spec.credential_id,
                data_date=sources.extract_date(spec),
                quarantine=quarantine_split(contract, partitioned=False),
                code_version=version,
                evidence=_evidence(contract.id, contract.version, source, sources.files_for(spec, None)),
            )
        by_version: dict[str, list[str]] = {}
        for key in context.partition_keys:
            by_version.setdefault(contracts.in_force(spec.contract, key).version, []).append(key)
        if len(by_version) > 1:
            # TODO(issue 4, drift): periods under different contract versions need one write each
            raise RefusedError(
                f"{spec.contract}: periods {context.partition_keys[0]}..{context.partition_keys[-1]} "
                f"fall under versions {', '.join(by_version)}; run each version's periods apart"
            )
        ((contract_version, keys),) = by_version.items()
        scan = sources.scan_sql(spec, keys)
        contract = contracts.version(spec.contract, contract_version)
        context.add_output_metadata({"contract_version": contract_version})
        source = describe_source(scan)
        return SqlRelation(
            sql=checked_select(contract, scan, source, True, _parent_keys(contract, warehouse)),
            pipeline_id=stream.pipeline_id,
            credential_id=spec.credential_id,
            quarantine=quarantine_split(contract, partitioned=True),
            code_version=version,
            evidence=_evidence(contract.id, contract.version, source, sources.files_for(spec, keys)),
        )

    def _parent_keys(contract: Contract, warehouse: DuckDBWarehouse) -> list[ParentKey]:
        """The contract's foreign keys as parent tables to check against; the parents must have landed."""
        wanted = [
            (column, stream_by_contract[parent], key)
            for column, parent, key in contract.references()
            if parent in stream_by_contract and stream_by_contract[parent] != spec.name
        ]
        if not wanted:
            return []
        with warehouse.get_connection(read_only=True) as conn:
            tables = {
                f"{s}.{t}"
                for s, t in conn.execute(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema IN ('raw', 'quarantine')"
                ).fetchall()
            }
        keys = []
        for column, parent, key in wanted:
            if f"raw.{parent}" not in tables:
                raise RefusedError(
                    f"raw.{parent} does not exist yet: build raw/{parent} first ({spec.name}.{column} must "
                    f"reference its {key})"
                )
            held = f"quarantine.{parent}"
            keys.append(ParentKey(column, f"raw.{parent}", key, held if held in tables else None))
        return keys

    return raw_stream


def _evidence(contract_id: str, version: str, source: list[Column], files: list[Path]) -> dict[str, object]:
    """What the ledger records about an extract: its contract, its own schema, the files it came from."""
    return {
        "contract": contract_id,
        "contract_version": version,
        "source_schema_hash": schema_hash(source),
        "source_files": len(files),
        "source_bytes": sum(f.stat().st_size for f in files),
    }

"""Raw assets from stream manifests: the source read as SQL, landed by the warehouse IO manager."""

import dagster as dg

from barecount.connectors.files import SourceFiles
from barecount.factories.common import asset_key, code_reference, code_version, owners
from barecount.project import ProjectPaths
from barecount.specs.loader import LoadedStream
from barecount.warehouse.relation import SqlRelation


def build_stream_asset(
    stream: LoadedStream, partitions_def: dg.PartitionsDefinition, paths: ProjectPaths
) -> dg.AssetsDefinition:
    """`raw/<stream>`: one period's extract (or a key range of them) in one SELECT over the files."""
    spec = stream.spec

    @dg.asset(
        key=asset_key(stream.asset_ref),
        description=spec.description,
        group_name="raw",
        owners=owners(spec.owner),
        tags={"domain": stream.domain},
        kinds={"duckdb", spec.connector.kind},
        partitions_def=partitions_def if spec.partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if spec.partitioned else None,
        code_version=code_version(spec.model_dump_json()),
        metadata={
            "dagster/code_references": code_reference(paths, stream.file, stream.line),
            "source": f"{spec.connector.kind}: {spec.connector.path}",
            "x_pipeline_id": stream.pipeline_id,
            "x_credential_id": spec.credential_id,
        },
    )
    def raw_stream(context: dg.AssetExecutionContext, sources: SourceFiles) -> SqlRelation:
        if spec.partitioned:
            return SqlRelation(
                sql=sources.relation_sql(spec, context.partition_keys),
                pipeline_id=stream.pipeline_id,
                credential_id=spec.credential_id,
            )
        return SqlRelation(
            sql=sources.relation_sql(spec, None),
            pipeline_id=stream.pipeline_id,
            credential_id=spec.credential_id,
            data_date=sources.extract_date(spec),
        )

    return raw_stream

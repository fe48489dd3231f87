"""GDP models and KPIs from SQL files: inputs bound to partition-filtered relations, one statement per range."""

from collections.abc import Mapping, Sequence
from dataclasses import replace

import dagster as dg

from barecount.factories.common import asset_key, code_reference, code_version, owners
from barecount.pii import mask_sql, masking_variables
from barecount.project import ProjectPaths
from barecount.specs.kpi import KpiSpec
from barecount.specs.loader import LoadedSql
from barecount.specs.model import ModelSpec
from barecount.sql_binding import bind_inputs
from barecount.warehouse.relation import (
    INTERNAL_CREDENTIAL,
    PARTITION_COLUMN,
    HeldBack,
    SqlRelation,
    TableRef,
    in_list,
    sql_literal,
)


def _input_name(ref: str) -> str:
    return ref.replace("/", "__")


def render_sql(item: LoadedSql, inputs: Mapping[str, TableRef]) -> str:
    """The model's SQL with each declared input replaced by its relation; KPIs get their version column."""
    relations = {f"{ref.schema}.{ref.table}": ref.select_sql() for ref in inputs.values()}
    sql = bind_inputs(item.sql, relations)
    if isinstance(item.spec, ModelSpec):
        sql = mask_sql(sql, item.spec.pii)
    if isinstance(item.spec, KpiSpec):
        sql = f"SELECT kpi.*, {sql_literal(item.spec.version)} AS kpi_version FROM (\n{sql}\n) AS kpi"
    return sql


def late_arrival_mapping(keys: Sequence[str], late_periods: int) -> dg.StaticPartitionMapping:
    """Each input period feeds its own period and the `late_periods` before it (whose rows it may carry late)."""
    return dg.StaticPartitionMapping({k: keys[max(0, i - late_periods) : i + 1] for i, k in enumerate(keys)})


def build_sql_asset(
    item: LoadedSql, partitions_def: dg.PartitionsDefinition, paths: ProjectPaths, partitioned_refs: set[str]
) -> dg.AssetsDefinition:
    """`gdp/<model>` or `kpi/<id>`: the SQL over its inputs, written by the warehouse IO manager."""
    spec = item.spec
    partitioned = spec.partitioned if not isinstance(spec, KpiSpec) else True
    late = spec.late_periods if isinstance(spec, ModelSpec) else 0
    mapping = late_arrival_mapping(partitions_def.get_partition_keys(), late) if late else None
    description = spec.description
    metadata: dict[str, object] = {
        "dagster/code_references": code_reference(paths, item.sql_file),
        "sql_file": item.sql_file,
        "sql": dg.MetadataValue.md(f"```sql\n{item.sql.strip()}\n```"),
    }
    tags = {"domain": item.domain}
    if isinstance(spec, KpiSpec):
        description = f"{spec.label} ({spec.unit}), version {spec.version}. {spec.description}"
        metadata |= {"kpi_version": spec.version, "unit": spec.unit, "spec_file": item.spec_file}
        tags = {"domain": "kpi"}
    else:
        metadata |= {"grain": spec.grain, "primary_key": ", ".join(spec.primary_key)}

    version = code_version(spec.model_dump_json(), item.sql)

    @dg.asset(
        key=asset_key(item.asset_ref),
        ins={
            _input_name(dep): dg.AssetIn(
                key=asset_key(dep), partition_mapping=mapping if dep in partitioned_refs else None
            )
            for dep in spec.depends_on
        },
        description=description,
        group_name=item.layer,
        owners=owners(spec.owner),
        tags=tags,
        kinds={"duckdb", "sql"},
        partitions_def=partitions_def if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        code_version=version,
        metadata=metadata,
    )
    def sql_asset(context: dg.AssetExecutionContext, **inputs: TableRef) -> SqlRelation:
        own = context.partition_keys if partitioned else []
        # a period an input held back in this run is left as it was here too, and read from no input
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
            written = in_list([k for k in own if k not in held])
            sql = f"SELECT * FROM (\n{sql}\n) AS placed WHERE {PARTITION_COLUMN} IN {written}"
        return SqlRelation(
            sql=sql,
            pipeline_id=item.asset_ref.replace("/", "."),
            credential_id=INTERNAL_CREDENTIAL,
            code_version=version,
            evidence={"kpi_version": spec.version} if isinstance(spec, KpiSpec) else {},
            inputs={f"{ref.schema}/{ref.table}": ref.partition_keys for ref in inputs.values()},
            held_back={k: HeldBack("hold", why) for k, why in held.items() if k in own},
            late_periods=late,
            variables=masking_variables(item.name, spec.pii) if isinstance(spec, ModelSpec) else {},
        )

    return sql_asset

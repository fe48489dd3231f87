"""GDP models and KPIs from SQL files: inputs bound to partition-filtered relations, one statement per range."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import dagster as dg

from barecount.factories.common import asset_key, code_reference, code_version, owners
from barecount.pii import mask_sql, masking_variables
from barecount.project import ProjectPaths
from barecount.specs.kpi import KpiSpec
from barecount.specs.loader import LoadedSql
from barecount.specs.model import ModelSpec
from barecount.sql_binding import bind_inputs
from barecount.warehouse.relation import INTERNAL_CREDENTIAL, HeldBack, SqlRelation, TableRef, sql_literal


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


def build_sql_asset(
    item: LoadedSql, partitions_def: dg.PartitionsDefinition, paths: ProjectPaths
) -> dg.AssetsDefinition:
    """`gdp/<model>` or `kpi/<id>`: the SQL over its inputs, written by the warehouse IO manager."""
    spec = item.spec
    partitioned = spec.partitioned if not isinstance(spec, KpiSpec) else True
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
        ins={_input_name(dep): dg.AssetIn(key=asset_key(dep)) for dep in spec.depends_on},
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
    def sql_asset(**inputs: TableRef) -> SqlRelation:
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
        return SqlRelation(
            sql=render_sql(item, inputs),
            pipeline_id=item.asset_ref.replace("/", "."),
            credential_id=INTERNAL_CREDENTIAL,
            code_version=version,
            evidence={"kpi_version": spec.version} if isinstance(spec, KpiSpec) else {},
            inputs={f"{ref.schema}/{ref.table}": ref.partition_keys for ref in inputs.values()},
            held_back={k: HeldBack("hold", why) for k, why in held.items()} if partitioned else {},
            variables=masking_variables(item.name, spec.pii) if isinstance(spec, ModelSpec) else {},
        )

    return sql_asset

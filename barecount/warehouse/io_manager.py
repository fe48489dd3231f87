"""`WarehouseIOManager`: writes relations as partitions and hands inputs over as lazy table references."""

from typing import Any

import dagster as dg
from pydantic import Field

from barecount.calendar.partitions import FiscalCalendarResource
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import INTERNAL_CREDENTIAL, LINEAGE_COLUMNS, SqlRelation, TableRef
from barecount.warehouse.writes import SplitResult, Target, WriteResult, replace_partitions, replace_with_quarantine

FRAME_VIEW = "barecount_output_frame"
"""Name under which a Python transform's frame is visible to the write's SQL."""


def _table_of(key: dg.AssetKey) -> tuple[str, str]:
    if len(key.path) < 2:
        raise ValueError(f"asset {key.to_user_string()}: keys must be <layer>/<name> to name a warehouse table")
    return key.path[-2], key.path[-1]


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Stores `SqlRelation` outputs in `<layer>.<name>` and loads inputs as `TableRef`s.

    Each output is wrapped with the lineage columns and replaces its partitions in one transaction;
    row counts and the schema hash are computed in the warehouse and become materialization metadata.
    """

    warehouse: dg.ResourceDependency[DuckDBWarehouse]
    fiscal_calendar: dg.ResourceDependency[FiscalCalendarResource]
    org_slug: str = Field(description="Organisation slug stamped on every row as x_org_slug.")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Write a `SqlRelation`, or a small Arrow-compatible frame from a Python transform."""
        frame = None
        if not isinstance(obj, SqlRelation):
            if not hasattr(obj, "__arrow_c_stream__"):
                raise TypeError(
                    f"asset {context.asset_key.to_user_string()} returned {type(obj).__name__}; the warehouse IO "
                    "manager stores SqlRelation outputs (SQL runs in the warehouse) or small Arrow/polars frames"
                )
            frame, obj = (
                obj,
                SqlRelation(
                    sql=f"SELECT * FROM {FRAME_VIEW}",
                    pipeline_id=".".join(context.asset_key.path),
                    credential_id=INTERNAL_CREDENTIAL,
                ),
            )
        schema, table = _table_of(context.asset_key)
        run_dates = None
        if context.has_asset_partitions:
            keys = self.fiscal_calendar.sort_keys(context.asset_partition_keys)
            run_dates = {k: self.fiscal_calendar.run_date(k) for k in keys}
        target = Target(
            schema, table, self.org_slug, context.run_id, run_dates, obj.pipeline_id, obj.credential_id, obj.data_date
        )
        with self.warehouse.get_connection() as conn:
            if frame is not None:
                conn.register(FRAME_VIEW, frame)
            if obj.quarantine is not None:
                split = replace_with_quarantine(conn, target, obj)
                result = split.landed
            else:
                split, result = (
                    None,
                    replace_partitions(
                        conn, schema, table, obj, org_slug=self.org_slug, run_id=context.run_id, run_dates=run_dates
                    ),
                )
        self._record_metadata(context, obj, result, run_dates is not None)
        if split is not None:
            self._record_quarantine(context, split, run_dates is not None)

    def _record_quarantine(self, context: dg.OutputContext, split: SplitResult, partitioned: bool) -> None:
        """Rows in = landed + quarantined, as numbers per partition, and the rules that quarantined rows."""
        context.add_output_metadata(
            {
                "quarantine_table": split.quarantined.table,
                "quarantined_by_rule": dg.MetadataValue.json(dict(split.rules)),
            }
        )
        if not partitioned:
            context.add_output_metadata(
                {
                    "rows_in": dg.MetadataValue.int(split.landed.rows + split.quarantined.rows),
                    "rows_quarantined": dg.MetadataValue.int(split.quarantined.rows),
                }
            )
            return
        for key, rows_in in split.rows_in_by_partition.items():
            context.step_context.add_asset_metadata(
                {
                    "rows_in": dg.MetadataValue.int(rows_in),
                    "rows_quarantined": dg.MetadataValue.int(split.quarantined.rows_by_partition.get(key, 0)),
                },
                asset_key=context.asset_key,
                partition_key=key,
            )

    def _record_metadata(
        self, context: dg.OutputContext, relation: SqlRelation, result: WriteResult, partitioned: bool
    ) -> None:
        context.add_output_metadata(
            {
                "dagster/table_name": result.table,
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(c.name, c.type) for c in result.columns]
                    + [dg.TableColumn(c, "lineage") for c in LINEAGE_COLUMNS]
                ),
                "schema_hash": result.schema_hash,
                "x_org_slug": self.org_slug,
                "x_pipeline_id": relation.pipeline_id,
                "x_credential_id": relation.credential_id,
                "rows_written_in_run": dg.MetadataValue.int(result.rows),
                "sql": dg.MetadataValue.md(f"```sql\n{result.sql}\n```"),
            }
        )
        if not partitioned:
            context.add_output_metadata({"dagster/row_count": dg.MetadataValue.int(result.rows)})
            return
        for key, rows in result.rows_by_partition.items():
            start, end = self.fiscal_calendar.calendar().window(key)
            context.step_context.add_asset_metadata(
                {
                    "dagster/row_count": dg.MetadataValue.int(rows),
                    "fiscal_window": f"{start.isoformat()} .. {end.isoformat()}",
                    "x_pipeline_run_date": end.isoformat(),
                },
                asset_key=context.asset_key,
                partition_key=key,
            )

    def load_input(self, context: dg.InputContext) -> TableRef:
        schema, table = _table_of(context.asset_key)
        keys = None
        if context.has_asset_partitions:
            keys = tuple(self.fiscal_calendar.sort_keys(context.asset_partition_keys))
        return TableRef(schema=schema, table=table, org_slug=self.org_slug, partition_keys=keys)

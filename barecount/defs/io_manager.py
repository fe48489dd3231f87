"""`WarehouseIOManager`, for assets written in Python (the escape hatch): it writes a `SqlRelation` or a small
Arrow-compatible frame with the same governed write the layer steps use, and hands inputs over as lazy table
references. It decides nothing itself, as thin as dagster-duckdb's."""

from typing import Any

import dagster as dg
from pydantic import Field

from barecount.defs.partitions import FiscalCalendarResource
from barecount.defs.resources import Warehouse
from barecount.defs.results import materialization_metadata
from barecount.defs.translator import asset_ref
from barecount.pipeline.materialize import FRAME_VIEW, materialize, table_of
from barecount.pipeline.scope import RunScope
from barecount.sql.relation import INTERNAL_CREDENTIAL, SqlRelation, TableRef


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Stores `SqlRelation` outputs (or frames) in `<layer>.<name>` and loads inputs as `TableRef`s."""

    warehouse: dg.ResourceDependency[Warehouse]
    fiscal_calendar: dg.ResourceDependency[FiscalCalendarResource]
    org_slug: str = Field(description="Organisation slug stamped on every row as x_org_slug.")

    def _ref(self, key: dg.AssetKey) -> str:
        """The asset as the warehouse names it: its key without the organisation, when the key leads with it."""
        return asset_ref(key) if key.path[0] == self.org_slug else key.to_user_string()

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        asset = self._ref(context.asset_key)
        frame = None
        if not isinstance(obj, SqlRelation):
            if not hasattr(obj, "__arrow_c_stream__"):
                raise TypeError(
                    f"asset {asset} returned {type(obj).__name__}; the warehouse IO manager stores SqlRelation "
                    "outputs (SQL runs in the warehouse) or small Arrow/polars frames"
                )
            frame = obj
            obj = SqlRelation(
                sql=f"SELECT * FROM {FRAME_VIEW}",
                pipeline_id=asset.replace("/", "."),
                credential_id=INTERNAL_CREDENTIAL,
            )
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else None
        calendar = self.fiscal_calendar.calendar()
        with self.warehouse.get_connection() as conn:
            scope = RunScope(
                conn=conn,
                run_id=context.run_id,
                org_slug=self.org_slug,
                calendar=calendar,
                years=(self.fiscal_calendar.first_year, self.fiscal_calendar.last_year),
                tags=dict(context.step_context.dagster_run.tags),
            )
            done = materialize(scope, asset, obj, keys, frame)
        for key, metadata in materialization_metadata(done, self.org_slug, calendar).items():
            if not metadata:
                continue
            if key is None:
                context.add_output_metadata(metadata)
            else:
                context.step_context.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=key)

    def load_input(self, context: dg.InputContext) -> TableRef:
        schema, table = table_of(self._ref(context.asset_key))
        keys = (
            tuple(self.fiscal_calendar.sort_keys(context.asset_partition_keys))
            if context.has_asset_partitions
            else None
        )
        return TableRef(schema=schema, table=table, org_slug=self.org_slug, partition_keys=keys)

"""The warehouse IO manager under Dagster: Python transforms' frames, lazy inputs, refused outputs."""

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from barecount.config.profiles import Settings
from barecount.defs.assembly import build_resources
from barecount.defs.partitions import build_partitions_def
from barecount.sql.relation import TableRef


def test_python_transform_frames_are_written_with_lineage_and_inputs_stay_lazy(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    partitions = build_partitions_def([p.key for p in settings.calendar.periods(1995, 1995)])
    seen: list[TableRef] = []

    @dg.asset(key=["gdp", "targets"], partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def targets(context: dg.AssetExecutionContext) -> pa.Table:
        keys = context.partition_keys
        return pa.table({"fiscal_period": keys, "target": [100.5 * (i + 1) for i in range(len(keys))]})

    @dg.asset(key=["kpi", "target_total"], ins={"targets": dg.AssetIn(["gdp", "targets"])}, partitions_def=partitions)
    def target_total(targets: TableRef) -> pa.Table:
        seen.append(targets)
        return pa.table({"fiscal_period": list(targets.partition_keys or ()), "value": [1.0]})

    resources = build_resources(settings)
    result = dg.materialize(
        [targets],
        instance=instance,
        resources=resources,
        tags={"dagster/asset_partition_range_start": "FY1995-P01", "dagster/asset_partition_range_end": "FY1995-P03"},
    )
    assert result.success
    assert dg.materialize(
        [targets, target_total],
        instance=instance,
        resources=resources,
        partition_key="FY1995-P02",
        selection=[target_total],
    ).success
    assert seen == [TableRef("gdp", "targets", "acme", ("FY1995-P02",))]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rows = conn.execute(
            "SELECT fiscal_period, target, x_pipeline_id, x_credential_id, x_pipeline_run_date FROM gdp.targets "
            "ORDER BY 1"
        ).fetchall()
    assert [r[0] for r in rows] == ["FY1995-P01", "FY1995-P02", "FY1995-P03"]
    assert {(r[2], r[3]) for r in rows} == {("gdp.targets", "barecount")}
    assert rows[0][4] == settings.calendar.period("FY1995-P01").end


def test_rows_are_refused_other_than_as_relations_or_frames(settings: Settings, instance: dg.DagsterInstance) -> None:
    @dg.asset(key=["gdp", "rows"])
    def rows() -> list[dict[str, int]]:
        return [{"a": 1}]

    with pytest.raises(TypeError, match=r"asset gdp/rows returned list; the warehouse IO manager stores SqlRelation"):
        dg.materialize([rows], instance=instance, resources=build_resources(settings))

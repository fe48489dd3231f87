"""barecount/defs/partition_metadata.py sets a private attribute of Dagster's step context: these tests fail loudly
when that changes, by comparing what it records with what Dagster's own `add_asset_metadata` records."""

from pathlib import Path

import dagster as dg

from barecount.defs.partition_metadata import add_partition_metadata

PERIODS = dg.StaticPartitionsDefinition([f"P{n:02d}" for n in range(1, 13)])
RANGE = {"dagster/asset_partition_range_start": "P03", "dagster/asset_partition_range_end": "P09"}


def _recorded(tmp_path: Path, one_go: bool) -> dict[tuple[str, str], dict[str, object]]:
    """(asset, period) -> the metadata of its materialization, for a step of two assets over P03..P09."""

    @dg.multi_asset(
        specs=[dg.AssetSpec(name, partitions_def=PERIODS) for name in ("a", "b")],
        can_subset=True,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def step(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
        for key in sorted(context.selected_asset_keys):
            by_period = {
                p: {"rows": dg.MetadataValue.int(int(p[1:])), "asset": key.path[-1]} for p in context.partition_keys
            }
            if one_go:
                add_partition_metadata(context, key, by_period)
            else:
                for period, values in by_period.items():
                    context.add_asset_metadata(values, asset_key=key, partition_key=period)
            yield dg.MaterializeResult(asset_key=key, metadata={"common": "to every period"})

    tmp_path.mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        defs = dg.Definitions(assets=[step], jobs=[dg.define_asset_job("all", partitions_def=PERIODS)])
        assert defs.resolve_job_def("all").execute_in_process(instance=instance, tags=RANGE).success
        found = {}
        for name in ("a", "b"):
            records = instance.fetch_materializations(dg.AssetKey(name), limit=100).records
            for record in records:
                materialization = record.asset_materialization
                assert materialization is not None and materialization.partition is not None
                found[name, materialization.partition] = {k: v.value for k, v in materialization.metadata.items()}
        return found


def test_each_period_gets_the_metadata_dagsters_add_asset_metadata_would_give_it(tmp_path: Path) -> None:
    ours = _recorded(tmp_path / "ours", one_go=True)
    dagsters = _recorded(tmp_path / "dagster", one_go=False)
    assert ours == dagsters
    assert len(ours) == 2 * 7
    assert ours["b", "P05"] == {"rows": 5, "asset": "b", "common": "to every period"}

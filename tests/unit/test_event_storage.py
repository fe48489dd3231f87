"""barecount/config/event_storage.py extends Dagster's private SQLite event log: these tests fail loudly when the
internals it relies on change, and show that what it stores reads back through Dagster's public API."""

import inspect
from pathlib import Path

import dagster as dg
from dagster._core.storage.event_log import SqliteEventLogStorage  # noqa: TID251 - what is pinned here

from barecount.config.event_storage import BareCountSqliteStorage, BatchedSqliteEventLogStorage

RELIED_ON = {
    "_connect": ["self", "shard"],
    "run_connection": ["self", "run_id"],
    "index_transaction": ["self"],
    "prepare_insert_event": ["self", "event"],
    "_store_asset_event_tags": ["self", "conn", "events", "event_ids"],
    "_store_asset_event": ["self", "conn", "event", "event_id"],
    "_initdb": ["self", "engine", "for_index_shard"],
    "conn_string_for_shard": ["self", "shard_name"],
    "store_event": ["self", "event"],
    "store_event_batch": ["self", "events"],
    "has_table": ["self", "table_name"],
    "has_secondary_index": ["self", "name"],
    "_has_asset_key_col_on_connection": ["self", "conn", "column_name"],
}
"""The methods of Dagster's SqliteEventLogStorage the batched storage calls or overrides, with their parameters."""


def test_the_dagster_internals_the_batched_event_log_relies_on_are_as_it_expects() -> None:
    for name, parameters in RELIED_ON.items():
        method = getattr(SqliteEventLogStorage, name, None)
        assert method is not None, (
            f"SqliteEventLogStorage.{name} is gone: barecount/config/event_storage.py must change"
        )
        found = list(inspect.signature(method).parameters)
        assert found == parameters, (
            f"SqliteEventLogStorage.{name}{found}: barecount/config/event_storage.py must change"
        )
    assert issubclass(BatchedSqliteEventLogStorage, SqliteEventLogStorage)


def test_a_batch_of_materializations_reads_back_through_the_public_api(tmp_path: Path) -> None:
    partitions = dg.StaticPartitionsDefinition([f"P{n:02d}" for n in range(1, 41)])

    @dg.multi_asset(specs=[dg.AssetSpec(f"a{n}", partitions_def=partitions) for n in range(3)], can_subset=True)
    def step(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
        for key in context.selected_asset_keys:
            yield dg.MaterializeResult(asset_key=key)

    config = {"storage": {"custom": {"module": BareCountSqliteStorage.__module__,
                                     "class": BareCountSqliteStorage.__name__,
                                     "config": {"base_dir": str(tmp_path)}}}}  # fmt: skip
    with dg.instance_for_test(overrides=config, temp_dir=str(tmp_path)) as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        job = dg.define_asset_job("all", partitions_def=partitions)
        defs = dg.Definitions(assets=[step], jobs=[job])
        result = defs.resolve_job_def("all").execute_in_process(
            instance=instance,
            tags={"dagster/asset_partition_range_start": "P01", "dagster/asset_partition_range_end": "P40"},
        )
        assert result.success
        for n in range(3):
            materialized = instance.get_materialized_partitions(dg.AssetKey(f"a{n}"))
            assert materialized == {f"P{k:02d}" for k in range(1, 41)}

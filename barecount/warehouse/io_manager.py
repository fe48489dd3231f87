"""`WarehouseIOManager`: writes relations as partitions and hands inputs over as lazy table references."""

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import dagster as dg
from pydantic import Field

from barecount.calendar.partitions import FiscalCalendarResource
from barecount.ledger import holds, ledger
from barecount.rendering import markdown_table
from barecount.tags import FORCE_TAG, barecount_tags
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.relation import INTERNAL_CREDENTIAL, LINEAGE_COLUMNS, SqlRelation, TableRef
from barecount.warehouse.work_keys import done_before, partitions_read_for, work_key, written_only
from barecount.warehouse.writes import SplitResult, Target, WriteResult, replace_within, split_within, transaction

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
            keys = [k for k in self.fiscal_calendar.sort_keys(context.asset_partition_keys) if k not in obj.held_back]
            run_dates = {k: self.fiscal_calendar.run_date(k) for k in keys}
        writes = (run_dates is None and None not in obj.held_back) or bool(run_dates)
        target = Target.of(schema, table, self.org_slug, context.run_id, run_dates, obj)
        asset = context.asset_key.to_user_string()
        forced = context.step_context.dagster_run.tags.get(FORCE_TAG) == "true"
        result, split = None, None
        with self.warehouse.get_connection() as conn, transaction(conn):
            upstream = ledger.latest_hashes(conn, list(obj.inputs))
            checked_against = ledger.latest_asset_hashes(conn, list(obj.checked_against))
            wanted = list(run_dates) if run_dates is not None else [None] if writes else []
            work = {k: work_key(obj, k, upstream, checked_against) for k in wanted}
            # the same work done before (same inputs, code and contract versions) is not done again
            unchanged = {} if forced else done_before(conn, asset, target, work)
            if unchanged:
                if run_dates is None:
                    writes = False
                else:
                    run_dates = {k: d for k, d in run_dates.items() if k not in unchanged}
                    writes = bool(run_dates)
                    obj = replace(obj, sql=written_only(obj.sql, list(run_dates)))
                target = Target.of(schema, table, self.org_slug, context.run_id, run_dates, obj)
            if writes:
                for name, value in obj.variables.items():
                    conn.execute(f"SET VARIABLE {name} = ?", [value])
                if frame is not None:
                    conn.register(FRAME_VIEW, frame)
                split = split_within(conn, target, obj) if obj.quarantine is not None else None
                result = split.landed if split is not None else replace_within(conn, target, obj.sql)
            # evidence commits with the data it describes, or not at all
            new_entries = _ledger_entries(asset, context.run_id, obj, result, split, upstream, work) if result else []
            new_entries += [
                ledger.NewEntry(
                    "noop",
                    asset,
                    key,
                    context.run_id,
                    {
                        "reason": f"unchanged since run {done.run_id}: the same inputs, code and contract versions",
                        "same_as": done.entry_hash,
                        "work_key": work[key],
                    },
                )
                for key, done in unchanged.items()
            ]
            entries = ledger.append(conn, new_entries)
            holds.hold_back(conn, asset, context.run_id, obj.held_back)
            if result is not None:
                launched_by = barecount_tags(context.step_context.dagster_run.tags)
                holds.resolve_blocks(conn, asset, list(result.rows_by_partition) or [None], context.run_id, launched_by)
        if result is not None:
            self._record_metadata(context, obj, result, split, entries)
        for key, done in unchanged.items():
            noop = {
                "unchanged_since_run": dg.MetadataValue.dagster_run(done.run_id),
                "same_as_ledger_hash": done.entry_hash,
            }
            if key is None:
                context.add_output_metadata(noop)
            else:
                context.step_context.add_asset_metadata(noop, asset_key=context.asset_key, partition_key=key)
        for key, held in obj.held_back.items():
            metadata = {"held_back": held.reason, "held_back_kind": held.kind}
            if key is None:
                context.add_output_metadata(metadata)
            else:
                context.step_context.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=key)

    def _record_metadata(
        self,
        context: dg.OutputContext,
        relation: SqlRelation,
        result: WriteResult,
        split: SplitResult | None,
        entries: list[ledger.LedgerEntry],
    ) -> None:
        context.add_output_metadata(
            {
                "dagster/table_name": result.table,
                "schema_hash": result.schema_hash,
                "x_org_slug": self.org_slug,
                "x_pipeline_id": relation.pipeline_id,
                "x_credential_id": relation.credential_id,
                "rows_written_in_run": dg.MetadataValue.int(result.rows),
                "sql_hash": hashlib.sha256(result.sql.encode()).hexdigest()[:16],
                **(
                    {"kpi_version": str(relation.evidence["kpi_version"])} if "kpi_version" in relation.evidence else {}
                ),
                **({"quarantine_table": split.quarantined.table} if split else {}),
            }
        )
        # Output metadata is copied onto the materialization of every partition of the range: the SQL
        # (tens of kB for a range of extracts) and the column schema go on the newest partition only,
        # the one the asset's page shows; the others name them by sql_hash and schema_hash.
        described = {
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(c.name, c.type) for c in result.columns]
                + [dg.TableColumn(c, "lineage") for c in LINEAGE_COLUMNS]
            ),
            "sql": dg.MetadataValue.md(f"```sql\n{result.sql}\n```"),
        }
        if result.rows_by_partition:
            newest = self.fiscal_calendar.sort_keys(list(result.rows_by_partition))[-1]
            context.step_context.add_asset_metadata(described, asset_key=context.asset_key, partition_key=newest)
        else:
            context.add_output_metadata(described)
        for entry in entries:
            if entry.kind != "materialization":
                continue
            facts = entry.facts
            metadata: dict[str, Any] = {
                "dagster/row_count": dg.MetadataValue.int(int(facts["rows_landed"])),
                "ledger_seq": dg.MetadataValue.int(entry.seq),
                "ledger_hash": entry.entry_hash,
                "content_hash": str(facts.get("content_hash")),
            }
            if "contract_version" in facts:
                metadata["contract_version"] = f"{facts['contract']} {facts['contract_version']}"
            if "inputs" in facts:  # each input partition read, by the ledger hash of its build
                metadata["inputs"] = dg.MetadataValue.md(
                    markdown_table(
                        ("input", "period", "ledger hash of its build"),
                        [(ref, p, h) for ref, read in facts["inputs"].items() for p, h in read.items()],
                    )
                )
            if "rows_in" in facts:
                metadata |= {
                    "rows_in": dg.MetadataValue.int(int(facts["rows_in"])),
                    "rows_quarantined": dg.MetadataValue.int(int(facts["rows_quarantined"])),
                    "quarantined_by_rule": dg.MetadataValue.md(
                        markdown_table(("rule", "rows"), sorted(facts["quarantined_by_rule"].items()))
                    ),
                }
            if entry.partition is None:
                context.add_output_metadata(metadata)
                continue
            start, end = self.fiscal_calendar.calendar().window(entry.partition)
            metadata |= {
                "fiscal_window": f"{start.isoformat()} .. {end.isoformat()}",
                "x_pipeline_run_date": end.isoformat(),
            }
            context.step_context.add_asset_metadata(
                metadata, asset_key=context.asset_key, partition_key=entry.partition
            )

    def load_input(self, context: dg.InputContext) -> TableRef:
        schema, table = _table_of(context.asset_key)
        if not context.has_asset_partitions:
            return TableRef(schema=schema, table=table, org_slug=self.org_slug)
        # periods the upstream step of this run held back are left alone downstream too, and so are periods
        # a contract blocks anywhere upstream, whichever run (CLI, UI, backfill, sensor) asks for them
        graph = context.step_context.job_def.asset_layer.asset_graph
        upstream = {k.to_user_string() for k in graph.get_ancestor_asset_keys(context.asset_key, include_self=True)}
        with self.warehouse.get_connection(read_only=True) as conn:
            held = holds.held_in_run(conn, context.asset_key.to_user_string(), context.step_context.run_id)
            for key, why in holds.blocked_periods(conn, upstream).items():
                held.setdefault(key, why)
        keys = tuple(k for k in self.fiscal_calendar.sort_keys(context.asset_partition_keys) if k not in held)
        held = {k: v for k, v in held.items() if k in context.asset_partition_keys}
        return TableRef(schema=schema, table=table, org_slug=self.org_slug, partition_keys=keys, held_back=held)


def _ledger_entries(
    asset: str,
    run_id: str,
    relation: SqlRelation,
    result: WriteResult,
    split: SplitResult | None,
    upstream: Mapping[tuple[str, str | None], str],
    work: Mapping[str | None, str | None],
) -> list[ledger.NewEntry]:
    """One materialization entry per partition written (one for an unpartitioned table).

    Each entry names the ledger hash of every input partition it was built from, so a number can be
    traced back through the chain to the extracts it came from.
    """
    partitions: list[str | None] = list(result.rows_by_partition) or [None]
    restated = result.restated()
    entries = []
    for key in partitions:
        landed = result.rows_by_partition.get(key, 0) if key is not None else result.rows
        facts: dict[str, object] = {
            "code_version": relation.code_version,
            "table": result.table,
            "schema_hash": result.schema_hash,
            "rows_landed": landed,
            "content_hash": result.content.get(key),
            "work_key": work.get(key),
            **relation.evidence,
            **relation.partition_evidence.get(key, {}),
        }
        if relation.inputs:
            facts["inputs"] = {
                ref: {
                    p or "snapshot": upstream.get((ref, p))
                    for p in partitions_read_for(partitions_read, key, relation.late_periods)
                }
                for ref, partitions_read in relation.inputs.items()
            }
        if split is not None:
            quarantined = split.quarantined.rows_by_partition.get(key, 0) if key is not None else split.quarantined.rows
            facts |= {
                "rows_in": split.rows_in_by_partition.get(key, 0) if key is not None else landed + quarantined,
                "rows_quarantined": quarantined,
                "quarantined_by_rule": dict(split.rules_by_partition.get(key, {})),
            }
        entries.append(ledger.NewEntry("materialization", asset, key, run_id, facts))
        if split is not None and facts["rows_quarantined"]:
            entries.append(
                ledger.NewEntry(
                    "quarantine",
                    asset,
                    key,
                    run_id,
                    {
                        "table": split.quarantined.table,
                        "rows": facts["rows_quarantined"],
                        "by_rule": facts["quarantined_by_rule"],
                    },
                )
            )
        if key in relation.drifted:
            entries.append(ledger.NewEntry("drift", asset, key, run_id, relation.drifted[key]))
        if key in restated:
            entries.append(_restatement(asset, key, run_id, relation, restated[key]))
    return entries


def _restatement(
    asset: str, key: str | None, run_id: str, relation: SqlRelation, rows: tuple[int, int]
) -> ledger.NewEntry:
    """A partition rebuilt with different rows than it held: how many before and after, and why."""
    before, after = rows
    later = sorted(
        {
            p
            for read in relation.inputs.values()
            for p in partitions_read_for(read, key, relation.late_periods)
            if key is not None and p is not None and p != key
        }
    )
    reason = f"{before:,} rows before, {after:,} after: "
    if later:
        reason += f"built from its own period and the later extract(s) {', '.join(later)}, which carry its late rows"
    else:
        reason += "its inputs changed since the last build" if key is not None else "the snapshot changed"
    return ledger.NewEntry(
        "restatement",
        asset,
        key,
        run_id,
        {"rows_before": before, "rows_after": after, "late_extracts": later, "reason": reason},
    )

"""Write a relation as an asset's partitions, governed: work done before is not done again, each partition
written goes on the record with its rows, hashes and inputs, and held-back periods are kept as they were.

The decisions (which partitions are unchanged, which are held back) are taken here; the write itself is
`barecount.warehouse.writes` (lineage stamped in SQL, partitions replaced in one transaction), and the
evidence commits in the same transaction as the data it describes, or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

from barecount.evidence import holds, ledger
from barecount.pipeline.fingerprint import DoneBefore, done_before, partitions_read_for, work_key, written_only
from barecount.pipeline.scope import RunScope
from barecount.sql.relation import HeldBack, SqlRelation
from barecount.warehouse.connection import on_bigquery
from barecount.warehouse.writes import SplitResult, Target, WriteResult, replace_within, split_within, transaction

FRAME_VIEW = "barecount_output_frame"
"""Name under which a Python transform's frame is visible to the write's SQL."""


@dataclass(frozen=True)
class Materialized:
    """What writing one asset did: the write (if any), its ledger entries, and the periods left alone."""

    asset: str
    relation: SqlRelation
    keys: tuple[str, ...] | None
    """The periods asked for, in calendar order (None: an unpartitioned table)."""
    result: WriteResult | None
    split: SplitResult | None
    entries: tuple[ledger.LedgerEntry, ...]
    unchanged: Mapping[str | None, DoneBefore]
    held: Mapping[str | None, HeldBack]

    @property
    def written(self) -> list[str | None]:
        """The partitions written (None for an unpartitioned table)."""
        if self.result is None:
            return []
        return list(self.result.rows_by_partition) or [None]

    @property
    def rows(self) -> int:
        return self.result.rows if self.result is not None else 0


def table_of(asset: str) -> tuple[str, str]:
    """`layer/name` -> (schema, table)."""
    parts = asset.split("/")
    if len(parts) < 2:
        raise ValueError(f"asset {asset}: keys must be <layer>/<name> to name a warehouse table")
    return parts[-2], parts[-1]


def materialize(
    scope: RunScope,
    asset: str,
    relation: SqlRelation,
    keys: Sequence[str] | None,
    frame: object | None = None,
) -> Materialized:
    """Write `relation` as the periods `keys` of `asset` (None: the whole unpartitioned table), or a Python
    transform's Arrow-compatible `frame` (then `relation.sql` reads FRAME_VIEW)."""
    schema, table = table_of(asset)
    conn = scope.conn
    ordered = tuple(scope.sort_keys(keys)) if keys is not None else None
    run_dates = {k: scope.run_date(k) for k in ordered if k not in relation.held_back} if ordered is not None else None
    writes = (run_dates is None and None not in relation.held_back) or bool(run_dates)
    result, split = None, None
    started = replace(conn.costs) if on_bigquery(conn) else None
    with transaction(conn):
        upstream = ledger.latest_hashes(conn, list(relation.inputs))
        parents = ledger.latest_hashes(conn, list(relation.checked_against))
        wanted: list[str | None] = list(run_dates) if run_dates is not None else [None] if writes else []
        work = {k: work_key(relation, k, upstream, _checked_against(relation, k, parents)) for k in wanted}
        target = Target.of(schema, table, scope.org_slug, scope.run_id, run_dates, relation)
        # the same work done before (same inputs, code and contract versions) is not done again
        unchanged, edited = ({}, {}) if scope.forced else done_before(conn, asset, target, work)
        if unchanged:
            if run_dates is None:
                writes = False
            else:
                run_dates = {k: d for k, d in run_dates.items() if k not in unchanged}
                writes = bool(run_dates)
                relation = replace(relation, sql=written_only(relation.sql, list(run_dates)))
            target = Target.of(schema, table, scope.org_slug, scope.run_id, run_dates, relation)
        if writes:
            for name, value in relation.variables.items():
                conn.execute(f"SET VARIABLE {name} = ?", [value])
            if frame is not None:
                conn.register(FRAME_VIEW, frame)
            split = split_within(conn, target, relation) if relation.quarantine is not None else None
            result = split.landed if split is not None else replace_within(conn, target, relation.sql)
            if frame is not None:
                conn.unregister(FRAME_VIEW)
        if on_bigquery(conn) and started is not None:  # what writing cost, on the record with what it wrote
            spent = conn.costs.since(started)
            relation = replace(relation, evidence={**relation.evidence, "bigquery_jobs": asdict(spent)})
        new_entries = _ledger_entries(asset, scope.run_id, relation, result, split, upstream, work) if result else []
        new_entries += [
            ledger.NewEntry(
                "noop",
                asset,
                key,
                scope.run_id,
                {
                    "reason": f"unchanged since run {done.run_id}: the same inputs, code and contract versions",
                    "same_as": done.entry_hash,
                    "built_by_run": done.run_id,
                    "work_key": work[key],
                },
            )
            for key, done in unchanged.items()
        ]
        repaired = [k for k in edited if result is not None and (k is None or k in result.rows_by_partition)]
        new_entries += [ledger.NewEntry("repair", asset, k, scope.run_id, edited[k].facts()) for k in repaired]
        entries = ledger.append(conn, new_entries)
        holds.hold_back(conn, asset, scope.run_id, relation.held_back)
        if result is not None:
            holds.resolve_blocks(conn, asset, list(result.rows_by_partition) or [None], scope.run_id, scope.launched_by)
    scope.hold(asset, {k: h.reason for k, h in relation.held_back.items()})
    for key in repaired:
        scope.warn(f"{asset} {key or 'snapshot'}: {edited[key].facts()['reason']}")
    return Materialized(asset, relation, ordered, result, split, tuple(entries), unchanged, relation.held_back)


def _checked_against(
    relation: SqlRelation, key: str | None, parents: Mapping[tuple[str, str | None], str]
) -> dict[str, str | None]:
    """The builds a partition's foreign keys were checked against: a partitioned parent's same period (as the
    extracts of one period deliver a child and its parents together), or an unpartitioned parent's snapshot.
    A parent's other periods landing later does not make the work different; a replay re-checks what waited."""
    return {a: parents.get((a, key)) or parents.get((a, None)) for a in relation.checked_against}


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
            **({"unhashed_columns": list(relation.unfingerprinted)} if relation.unfingerprinted else {}),
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

"""The one "already done" decision: the same work asked for twice is done once, whatever launched it.

A partition's work key (its fingerprint) hashes what decides its rows: the asset's code version, the facts
only the asset knows (the contract version, the source files' SHA-256), the ledger hash of every input
partition it reads and of the parents its foreign keys are checked against (the same period, or the
snapshot), and a digest of the session variables it reads. Each materialization entry keeps its work key;
a write whose key equals the partition's latest one, while the table still holds the rows that entry
recorded (their count and content hash), writes nothing and leaves a `noop` entry naming the run that did
the work. Rows edited since (an UPDATE, DELETE or INSERT outside barecount) make the partition be rebuilt,
with a `repair` entry saying what was found. Every launch path
(the CLI, a UI materialization or backfill, a sensor) meets the same decision inside the run. A KPI
period found unchanged is judged again when its thresholds' baselines changed (`gates.thresholds`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from barecount.evidence import evidence_table_exists, ledger
from barecount.sql.relation import PARTITION_COLUMN, SqlRelation, in_list, quote_ident, sql_literal
from barecount.warehouse.writes import Target, business_columns, content_sql, source_filter

UNKEYED_EVIDENCE = ("attempt",)
"""Evidence that says how the work went, not what it was."""


def partitions_read_for(
    partitions_read: tuple[str, ...] | None, key: str | None, late_periods: int
) -> list[str | None]:
    """The input partitions behind one output partition: the same period and, for a model that takes late rows,
    the later periods read with it (`partitions_read` is in calendar order); or the whole unpartitioned input."""
    if partitions_read is None:
        return [None]
    if key not in partitions_read:
        return list(partitions_read)
    at = partitions_read.index(key)
    return list(partitions_read[at : at + 1 + late_periods])


DELIVERED_AT = "modified"
"""When a source file was delivered (its evidence's field): not what it holds, so not part of any work's key."""


def files_read(files: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """Source files' evidence without when they were delivered: a file touched but not changed is the same work."""
    return [{k: v for k, v in f.items() if k != DELIVERED_AT} for f in files]


def without_delivery_times(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """A partition's evidence as its work key sees it (see `files_read`)."""
    files = evidence.get("source_files_read")
    return {**evidence, "source_files_read": files_read(files)} if isinstance(files, list) else dict(evidence)


def work_key(
    relation: SqlRelation,
    key: str | None,
    upstream: Mapping[tuple[str, str | None], str],
    checked_against: Mapping[str, str | None],
) -> str | None:
    """The partition's work key, or None when the relation cannot say what it computes (a Python frame)."""
    if relation.code_version is None:
        return None
    payload = {
        "code": relation.code_version,
        "evidence": {k: v for k, v in relation.evidence.items() if k not in UNKEYED_EVIDENCE},
        "partition": without_delivery_times(relation.partition_evidence.get(key, {})),
        "inputs": {
            ref: {
                p or "snapshot": upstream.get((ref, p)) for p in partitions_read_for(read, key, relation.late_periods)
            }
            for ref, read in sorted(relation.inputs.items())
        },
        "checked_against": dict(sorted(checked_against.items())),
        # session variables (the masking key) change the rows; only their digest is kept
        "variables": hashlib.sha256(json.dumps(sorted(relation.variables.items())).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class DoneBefore:
    """The build a partition's work was already done by."""

    run_id: str
    entry_hash: str
    rows: int


@dataclass(frozen=True)
class Edited:
    """A partition whose rows are not those its latest build wrote and recorded: edited outside BareCount."""

    run_id: str
    expected: tuple[int, str | None]
    """Rows and content hash the build recorded."""
    found: tuple[int, str | None]

    def facts(self) -> dict[str, object]:
        """The `repair` ledger entry's facts."""
        return {
            "reason": f"its rows were changed outside barecount since run {self.run_id}: rebuilt",
            "built_by_run": self.run_id,
            "expected_rows": self.expected[0],
            "expected_content_hash": self.expected[1],
            "found_rows": self.found[0],
            "found_content_hash": self.found[1],
        }


def done_before(
    conn: duckdb.DuckDBPyConnection, asset: str, target: Target, keys: Mapping[str | None, str | None]
) -> tuple[dict[str | None, DoneBefore], dict[str | None, Edited]]:
    """The partitions among `keys` (partition -> work key) whose latest build had the same key and whose rows the
    target table still holds as written (the same rows and content hash); and those whose build had the same key
    but whose rows were edited since (to be rebuilt, with a `repair` entry)."""
    wanted = {k: w for k, w in keys.items() if w is not None}
    business = business_columns(conn, target.schema, target.table)
    if not wanted or not evidence_table_exists(conn, "ledger") or business is None:
        return {}, {}
    # only the wanted partitions' entries are read: the ledger only grows
    among = f"partition IN {in_list([k for k in wanted if k is not None])}"
    among = f"({among} OR partition IS NULL)" if None in wanted else among
    latest = conn.execute(
        "SELECT partition, arg_max(json_extract_string(facts, '$.work_key'), seq), arg_max(run_id, seq), "
        "arg_max(entry_hash, seq), arg_max(CAST(json_extract(facts, '$.rows_landed') AS BIGINT), seq), "
        "arg_max(json_extract_string(facts, '$.content_hash'), seq) "
        f"FROM {ledger.LEDGER_TABLE} WHERE kind = 'materialization' AND asset = ? AND {among} GROUP BY ALL",
        [asset],
    ).fetchall()
    # only partitions last built with the same work key are candidates: the table is read for those alone, and
    # not at all when there are none (a first run, changed inputs), which on BigQuery saves a job per asset
    latest = [row for row in latest if row[0] in wanted and row[1] == wanted[row[0]]]
    if not latest:
        return {}, {}
    this_source = source_filter(target.org_slug, target.pipeline_id, target.credential_id)
    if target.run_dates is not None:  # only the candidate periods are read
        this_source += f" AND {PARTITION_COLUMN} IN ({', '.join(sql_literal(row[0]) for row in latest)})"
    table = f"{quote_ident(target.schema)}.{quote_ident(target.table)}"
    measured = content_sql(table, business, this_source, target.run_dates is not None, target.unfingerprinted)
    found = {k: (int(n), str(h)) for k, n, h in conn.execute(measured).fetchall()}
    done, edited = {}, {}
    for partition, _, run_id, entry_hash, rows, content in latest:
        now = found.get(partition, (0, None))
        if now[0] == rows and (content is None or now[1] == content):  # None: recorded before content hashes
            done[partition] = DoneBefore(str(run_id), str(entry_hash), int(rows))
        else:
            edited[partition] = Edited(str(run_id), (int(rows), content), now)
    return done, edited


def written_only(relation_sql: str, keys: Sequence[str]) -> str:
    """The relation's SELECT, kept to the partitions still to be written."""
    listed = ", ".join(sql_literal(k) for k in keys) or "NULL"
    return f"SELECT * FROM ({relation_sql}) AS work WHERE {quote_ident(PARTITION_COLUMN)} IN ({listed})"

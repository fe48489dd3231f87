"""Run tokens: skip periods whose inputs and code have not changed since they were last built.

A period's token hashes what decides its content: the code version of every asset in the run, the
organisation, the size and modification time of each source file the period reads, the content of
the contract version in force for it, and the quarantined rows replayed into it since. A model that
takes late rows also reads the next periods' extracts once they are built (or being built): their
state is part of the token, so a period is rebuilt when the extract carrying its late rows arrives.
Tokens of successful runs are kept in `evidence.run_tokens`; `--force` ignores them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from barecount.evidence import LEDGER_TABLE, TOKENS_TABLE, ensure_evidence, evidence_table_exists
from barecount.profiles import Settings
from barecount.registry import ContractRegistry
from barecount.specs.loader import ProjectSpecs
from barecount.specs.stream import PERIOD_PLACEHOLDER
from barecount.warehouse.duckdb import DuckDBWarehouse
from barecount.warehouse.writes import insert_rows


@dataclass(frozen=True)
class PeriodToken:
    period: str
    token: str


def _file_state(path: Path) -> list[object]:
    if not path.is_file():
        return [str(path), None]
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def period_tokens(
    settings: Settings,
    specs: ProjectSpecs,
    defs: dg.Definitions,
    periods: Sequence[str],
    selection: Sequence[str],
    built: Collection[str] = (),
    replayed: Mapping[str | None, Sequence[str]] | None = None,
) -> list[PeriodToken]:
    """One token per period for running `selection` (asset refs) over it; `built` are the periods built before,
    `replayed` the replays that landed rows in a period (`replays`)."""
    replayed = replayed or {}
    code_versions = {
        spec.key.to_user_string(): spec.code_version
        for spec in defs.resolve_all_asset_specs()
        if spec.key.to_user_string() in selection
    }
    selected_streams = [s for s in specs.streams if s.asset_ref in selection]
    registry = ContractRegistry.load(settings.paths)
    shared = [
        _file_state(settings.sources_dir / s.spec.connector.path) for s in selected_streams if not s.spec.partitioned
    ]
    snapshot_contracts = [
        registry.in_force(s.spec.contract, None).content_hash for s in selected_streams if not s.spec.partitioned
    ]
    base = {
        "org": settings.tenant.slug,
        "code": sorted(code_versions.items()),
        "snapshots": shared,
        "snapshot_contracts": snapshot_contracts,
        "snapshot_replays": list(replayed.get(None, [])),
    }
    partitioned = [s for s in selected_streams if s.spec.partitioned]

    def own_inputs(period: str) -> dict[str, object]:
        return {
            "period": period,
            "extracts": [
                _file_state(settings.sources_dir / s.spec.connector.path.replace(PERIOD_PLACEHOLDER, period))
                for s in partitioned
            ],
            # a contract version approved for this period changes what the period's rows must be
            "contracts": [registry.in_force(s.spec.contract, period).content_hash for s in partitioned],
            "replays": list(replayed.get(period, [])),
        }

    late = max((getattr(m.spec, "late_periods", 0) for m in specs.models if m.asset_ref in selection), default=0)
    keys = settings.partition_keys
    position = {k: i for i, k in enumerate(keys)}
    present = set(periods) | set(built)
    tokens = []
    for period in periods:
        at = position[period]
        later = [own_inputs(k)["extracts"] for k in keys[at + 1 : at + 1 + late] if k in present]
        text = json.dumps({**base, **own_inputs(period), "later": later}, sort_keys=True, default=str)
        tokens.append(PeriodToken(period, hashlib.sha256(text.encode()).hexdigest()))
    return tokens


def built_periods(warehouse: DuckDBWarehouse) -> set[str]:
    """The periods some successful run has built."""
    if not Path(warehouse.database).exists():
        return set()
    with warehouse.get_connection(read_only=True) as conn:
        if not evidence_table_exists(conn, "run_tokens"):
            return set()
        return {str(p) for (p,) in conn.execute(f"SELECT DISTINCT fiscal_period FROM {TOKENS_TABLE}").fetchall()}


def replays(warehouse: DuckDBWarehouse) -> dict[str | None, list[str]]:
    """Period (None: a snapshot) -> the ledger hashes of the replays that landed quarantined rows in it."""
    if not Path(warehouse.database).exists():
        return {}
    with warehouse.get_connection(read_only=True) as conn:
        if not evidence_table_exists(conn, "ledger"):
            return {}
        rows = conn.execute(
            f"SELECT partition, list(entry_hash ORDER BY seq) FROM {LEDGER_TABLE} WHERE kind = 'replay' "
            "AND CAST(json_extract(facts, '$.rows_landed') AS BIGINT) > 0 GROUP BY ALL"
        ).fetchall()
    return {None if p is None else str(p): list(hashes) for p, hashes in rows}


def already_built(warehouse: DuckDBWarehouse, tokens: Sequence[PeriodToken]) -> dict[str, str]:
    """Period -> run id, for the periods whose token a successful run has recorded."""
    if not Path(warehouse.database).exists():
        return {}
    with warehouse.get_connection(read_only=True) as conn:
        if not evidence_table_exists(conn, "run_tokens"):
            return {}
        wanted = [t.token for t in tokens]
        rows = conn.execute(
            f"SELECT fiscal_period, arg_max(run_id, created_at) FROM {TOKENS_TABLE} "
            "WHERE token IN (SELECT unnest(?)) GROUP BY 1",
            [wanted],
        ).fetchall()
    return {str(p): str(r) for p, r in rows}


def record(warehouse: DuckDBWarehouse, tokens: Sequence[PeriodToken], run_id: str) -> None:
    """Remember that `run_id` built these periods from these inputs."""
    if not tokens:
        return
    with warehouse.get_connection() as conn:
        ensure_evidence(conn)
        insert_rows(
            conn,
            TOKENS_TABLE,
            ["token", "fiscal_period", "run_id"],
            [(t.token, t.period, run_id) for t in tokens],
        )


def contiguous_ranges(periods: Sequence[str], ordered_keys: Sequence[str]) -> list[list[str]]:
    """Split period keys into runs of consecutive keys (a Dagster run takes one contiguous range)."""
    position = {k: i for i, k in enumerate(ordered_keys)}
    ranges: list[list[str]] = []
    for key in sorted(periods, key=position.__getitem__):
        if ranges and position[key] == position[ranges[-1][-1]] + 1:
            ranges[-1].append(key)
        else:
            ranges.append([key])
    return ranges

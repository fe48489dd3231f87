"""Where each period of an asset stands now, from the evidence: its newest gate verdicts, and whether its newest
build was held back."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from barecount.evidence import GATE_RESULTS_TABLE, LEDGER_TABLE, evidence_table_exists


def latest_verdicts(
    conn: duckdb.DuckDBPyConnection, asset: str, gates: Sequence[str], periods: Sequence[str]
) -> dict[tuple[str, str], tuple[bool, str]]:
    """(gate, period) -> (passed, detail) of the newest verdict of each of `gates` on each of `periods` of
    `asset`; a period a gate never judged is absent."""
    if not gates or not periods or not evidence_table_exists(conn, "gate_results"):
        return {}
    rows = conn.execute(
        "SELECT gate, partition, arg_max(passed, checked_at), arg_max(detail, checked_at) "
        f"FROM {GATE_RESULTS_TABLE} WHERE asset = ? AND gate IN (SELECT unnest(?)) "
        "AND partition IN (SELECT unnest(?)) GROUP BY ALL",
        [asset, list(gates), list(periods)],
    ).fetchall()
    return {(str(gate), str(period)): (bool(passed), str(detail)) for gate, period, passed, detail in rows}


def held_now(conn: duckdb.DuckDBPyConnection, asset: str, periods: Sequence[str]) -> dict[str, str]:
    """Period -> why, for each of `periods` of `asset` whose newest run held it back rather than build it (or find
    it unchanged): the rows it holds, if any, are an earlier build's."""
    if not periods or not evidence_table_exists(conn, "ledger"):
        return {}
    rows = conn.execute(
        f"SELECT partition, arg_max(kind, seq), arg_max(json_extract_string(facts, '$.reason'), seq) "
        f"FROM {LEDGER_TABLE} WHERE asset = ? AND kind IN ('materialization', 'noop', 'hold') "
        "AND partition IN (SELECT unnest(?)) GROUP BY ALL",
        [asset, list(periods)],
    ).fetchall()
    return {str(period): str(why) for period, kind, why in rows if kind == "hold"}

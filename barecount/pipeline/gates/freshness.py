"""`freshness`: did each period's extract land within its contract's latency SLA (ODCS `slaProperties`)?

A period's extract is due `latency` after the period ends (from midnight UTC after its last day). A period the
run wrote is `fresh` if what it was built from was delivered by then, and `late` if after. A file was delivered
when it was last modified (recorded with the file as evidence); a BigQuery source, when it was first read. The
verdict does not block: a late extract is still the period's data; it goes on the record as every gate's
does, and `barecount status` shows it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta

from barecount.calendar import FiscalCalendar
from barecount.catalog.loader import LoadedStream
from barecount.contracts import ContractRegistry
from barecount.evidence.holds import FRESHNESS_GATE
from barecount.evidence.schema import LEDGER_TABLE
from barecount.pipeline.gates import GateVerdict, Verdicts, settle
from barecount.pipeline.scope import RunScope

FRESHNESS_CHECK = FRESHNESS_GATE


def due_at(calendar: FiscalCalendar, period: str, latency: timedelta) -> datetime:
    """When a period's extract is due: `latency` after the midnight (UTC) that ends its last day."""
    return datetime.combine(calendar.period(period).end + timedelta(days=1), time(), UTC) + latency


def newest_due(
    calendar: FiscalCalendar, periods: Sequence[str], latency: Callable[[str], timedelta | None], now: datetime
) -> tuple[str, datetime] | None:
    """The newest of `periods` (in calendar order) whose extract was due by `now`, and when; None if none was
    (or its contract version has no latency)."""
    for period in reversed(periods):
        allowed = latency(period)
        if allowed is None:
            return None
        due = due_at(calendar, period, allowed)
        if due <= now:
            return period, due
    return None


def judge_freshness(scope: RunScope, registry: ContractRegistry, stream: LoadedStream) -> GateVerdict | None:
    """The verdict on the periods the run wrote whose contract version has a latency; None if none has."""
    if not stream.spec.partitioned:
        return None
    delivered: dict[str, str] = {}
    for period, facts, recorded_at in scope.conn.execute(
        f"SELECT partition, facts, recorded_at FROM {LEDGER_TABLE} WHERE kind = 'materialization' AND asset = ? "
        "AND run_id = ?",
        [stream.asset_ref, scope.run_id],
    ).fetchall():
        modified = [str(f["modified"]) for f in json.loads(facts).get("source_files_read") or [] if "modified" in f]
        delivered[str(period)] = max(modified) if modified else str(recorded_at)
    results: Verdicts = []
    for period in scope.sort_keys(delivered):
        latency = registry.in_force(stream.spec.contract, period).latency
        if latency is None:
            continue
        due, arrived = due_at(scope.calendar, period, latency), _moment(delivered[period])
        late = arrived - due
        verdict = (
            f"late: delivered {arrived:%Y-%m-%d %H:%M} UTC, {_span(late)} after it was due ({due:%Y-%m-%d %H:%M} UTC)"
            if late > timedelta(0)
            else f"fresh: delivered {arrived:%Y-%m-%d %H:%M} UTC, due {due:%Y-%m-%d %H:%M} UTC"
        )
        results.append((period, late <= timedelta(0), verdict))
    if not results:
        return None
    return settle(scope, FRESHNESS_CHECK, stream.asset_ref, results, "landed within the latency SLA", blocking=False)


def _moment(recorded_at: str) -> datetime:
    moment = datetime.fromisoformat(recorded_at)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _span(late: timedelta) -> str:
    return f"{late.days:,} day(s)" if late.days else f"{late.seconds // 3600} hour(s)"

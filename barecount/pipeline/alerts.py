"""Alerts by webhook, Dagster-free: what a run's evidence says needs a person (a period blocked by drift, a gate
that failed, a late extract, a KPI scored as an anomaly, a run that failed for another reason), posted as JSON
to the tenant's targets.

Every alert is kept in `evidence.alerts`, one row per target, once it has been tried: delivered or not, after
how many attempts, and why not. An alert is known by its key (what happened, not which run saw it), so a
second run that finds the same block sends nothing again; one that was not delivered is tried again by the next
delivery. Posting never raises: an unreachable target costs its attempts and leaves the record, never the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from barecount.config.profiles import AlertTarget
from barecount.evidence.holds import ANOMALY_GATE, FRESHNESS_GATE, RunHolds
from barecount.evidence.schema import ALERTS_TABLE, ensure_evidence
from barecount.warehouse.connection import Connection
from barecount.warehouse.writes import transaction

UI_URL_ENV = "BARECOUNT_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:3000"
"""Where links in an alert point: the Dagster UI `barecount ui` serves."""
USER_AGENT = "barecount-alerts/1"


@dataclass(frozen=True)
class Alert:
    """One thing a person must know, as its webhook body says it."""

    kind: str
    tenant: str
    asset: str | None
    period: str | None
    reason: str
    run: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What happened, whichever run saw it: a block by its proposal, a failed gate by its detail, a failed
        or succeeded run by its id."""
        what = self.run if self.kind.startswith("run_") else json.dumps(self.details, sort_keys=True)
        text = "|".join([self.kind, self.tenant, self.asset or "", self.period or "", what])
        return f"{self.kind}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def body(self, ui_url: str) -> dict[str, Any]:
        """The JSON posted: kind, key, tenant, asset, period, reason, run, links, and what the kind adds."""
        # a pipeline run refused before any Dagster run names itself: there is no run page to link to
        links = {} if self.run == self.details.get("pipeline_run") else {"run": f"{ui_url}/runs/{self.run}"}
        if self.asset:
            links["asset"] = f"{ui_url}/assets/{self.tenant}/{self.asset}"  # Dagster keys lead with the org
        return {
            "kind": self.kind,
            "key": self.key,
            "tenant": self.tenant,
            "asset": self.asset,
            "period": self.period,
            "reason": self.reason,
            "run": self.run,
            "links": links,
            **self.details,
        }


WARNING_ALERTS = {FRESHNESS_GATE: "late", ANOMALY_GATE: "anomaly"}
"""The alert a warning gate's failure raises: a late extract, a KPI period that scored as an anomaly."""


def alerts_of_run(tenant: str, run_id: str, holds: RunHolds | None, failure: str | None) -> list[Alert]:
    """The alerts a run's evidence raises: each period it blocked, each gate that failed or warned, and the run
    itself if it failed with none of these (`failure`: why it failed, None if it succeeded)."""
    found = [
        Alert(
            "blocked",
            tenant,
            block.asset,
            block.fiscal_period,
            f"{block.contract} {block.contract_version} blocked by schema drift: {block.describe()}; "
            f"approve {block.proposal} to land it",
            run_id,
            {
                "contract": block.contract,
                "contract_version": block.contract_version,
                "proposed_version": PurePosixPath(block.proposal).stem,
                "proposal": block.proposal,
            },
        )
        for block in (holds.blocked if holds is not None else [])
    ]
    found += [
        Alert(
            "gate_failed",
            tenant,
            gate.asset,
            gate.partition,
            f"{gate.gate}: {gate.detail}",
            run_id,
            {"gate": gate.gate},
        )
        for gate in (holds.failed if holds is not None else [])
    ]
    found += [
        Alert(WARNING_ALERTS[gate.gate], tenant, gate.asset, gate.partition, gate.detail, run_id, {"gate": gate.gate})
        for gate in (holds.warned if holds is not None else [])
    ]
    if failure is not None and not found:
        found.append(Alert("run_failed", tenant, None, None, failure, run_id))
    if failure is None:
        found.append(Alert("run_succeeded", tenant, None, None, "the run succeeded", run_id))
    return found


@dataclass(frozen=True)
class Delivery:
    """What became of one alert at one target."""

    alert: Alert
    target: str
    delivered: bool
    attempts: int
    error: str | None


Post = Callable[[str, bytes, float], int]
"""(url, body, timeout) -> the HTTP status; raises OSError when nothing answers."""


def post_json(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": USER_AGENT}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def deliver(
    conn: Connection,
    targets: Sequence[tuple[AlertTarget, str]],
    alerts: Sequence[Alert],
    ui_url: str | None = None,
    post: Post = post_json,
) -> list[Delivery]:
    """Post each alert to each target that takes its kind, unless it was delivered there before; record every
    outcome in the evidence. The URL is never recorded (it may carry a token), only the target's name. Links
    point at `ui_url` (default: `BARECOUNT_UI_URL`, else the local UI)."""
    if not targets or not alerts:
        return []
    ui_url = ui_url or os.environ.get(UI_URL_ENV, DEFAULT_UI_URL)
    with transaction(conn):
        ensure_evidence(conn)
    done: list[Delivery] = []
    for target, url in targets:
        wanted = [a for a in alerts if a.kind in target.events]
        before = _records(conn, target.name, [a.key for a in wanted])
        for alert in wanted:
            delivered, attempts = before.get(alert.key, (False, 0))
            if delivered:
                continue
            body = alert.body(ui_url)
            outcome = _attempt(post, url, json.dumps(body, sort_keys=True).encode(), target)
            done.append(Delivery(alert, target.name, outcome[0], attempts + outcome[1], outcome[2]))
            _record(conn, target.name, alert, body, alert.key in before, done[-1])
    return done


def _attempt(post: Post, url: str, body: bytes, target: AlertTarget) -> tuple[bool, int, str | None]:
    """(delivered, attempts made, the last error) after up to `target.attempts` tries with doubling waits."""
    error: str | None = None
    for attempt in range(1, target.attempts + 1):
        if attempt > 1:
            time.sleep(target.backoff_seconds * 2 ** (attempt - 2))
        try:
            status = post(url, body, target.timeout_seconds)
        except (OSError, ValueError) as exc:  # refused, unreachable, timed out; never the URL in the message
            error = f"no answer ({type(exc).__name__}: {getattr(exc, 'reason', exc)})"
            continue
        if 200 <= status < 300:
            return True, attempt, None
        error = f"HTTP {status}"
    return False, target.attempts, error


def _records(conn: Connection, target: str, keys: Sequence[str]) -> dict[str, tuple[bool, int]]:
    """Key -> (delivered, attempts so far) for the alerts already recorded for `target`."""
    if not keys:
        return {}
    placeholders = ", ".join("?" for _ in keys)
    rows = conn.execute(
        f"SELECT event_key, delivered, attempts FROM {ALERTS_TABLE} WHERE target = ? AND event_key IN ({placeholders})",
        [target, *keys],
    ).fetchall()
    return {str(key): (bool(delivered), int(attempts)) for key, delivered, attempts in rows}


def _record(conn: Connection, target: str, alert: Alert, body: dict[str, Any], known: bool, outcome: Delivery) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    delivered_at = now if outcome.delivered else None
    with transaction(conn):
        if known:
            conn.execute(
                f"UPDATE {ALERTS_TABLE} SET delivered = ?, attempts = ?, last_error = ?, delivered_at = ? "
                "WHERE event_key = ? AND target = ?",
                [outcome.delivered, outcome.attempts, outcome.error, delivered_at, alert.key, target],
            )
            return
        conn.execute(
            f"INSERT INTO {ALERTS_TABLE} (event_key, target, kind, asset, partition, run_id, body, delivered, "
            "attempts, last_error, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                alert.key, target, alert.kind, alert.asset, alert.period, alert.run,
                json.dumps(body, sort_keys=True), outcome.delivered, outcome.attempts, outcome.error, delivered_at,
            ],
        )  # fmt: skip

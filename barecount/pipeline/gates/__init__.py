"""Gates: each judges the partitions a run wrote, period by period, and keeps its verdicts in the evidence.

Dagster evaluates a check once for a whole single-run range, so a gate's verdicts are kept per partition
(`evidence.gate_results` and the ledger): later steps and runs read only the periods that passed, and
publication refuses a period whose latest verdict failed. The Dagster layer turns a `GateVerdict` into
the check's result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from barecount.evidence import holds
from barecount.pipeline.scope import RunScope
from barecount.warehouse.writes import transaction

Verdicts = list[tuple[str | None, bool, str]]
"""(partition, passed, detail) per partition judged; None is an unpartitioned table."""


@dataclass(frozen=True)
class GateVerdict:
    """A gate's verdicts on what a run wrote, and what it says about them."""

    gate: str
    asset: str
    results: Verdicts
    verdict: str
    """What passing means, as in "3 of 3 period(s) <verdict>"."""
    held: Mapping[str, str] = field(default_factory=dict)
    """Periods of the asset the run held back (not written, so not judged)."""
    facts: Mapping[str, int | str | Mapping[str, object]] = field(default_factory=dict)
    """Figures for the check's metadata: counts, texts, and mappings (shown as JSON)."""
    markdown: Mapping[str, str] = field(default_factory=dict)
    """Markdown for the check's metadata (SQL, tables)."""

    @property
    def failing(self) -> dict[str, str]:
        """Period ('snapshot' for an unpartitioned table) -> why, for the periods that failed."""
        return {p or "snapshot": why for p, ok, why in self.results if not ok}

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.results)


def settle(
    scope: RunScope,
    gate: str,
    asset: str,
    results: Verdicts,
    verdict: str,
    facts: Mapping[str, int | str | Mapping[str, object]] | None = None,
    markdown: Mapping[str, str] | None = None,
    judged_on: Mapping[str | None, Mapping[str, object]] | None = None,
    blocking: bool = True,
) -> GateVerdict:
    """Keep a gate's per-period verdicts (evidence.gate_results and the ledger, in one transaction); a period
    that failed a blocking gate is held back from what the rest of the run builds from it."""
    with transaction(scope.conn):
        holds.record_gate_results(scope.conn, gate, asset, scope.run_id, results, judged_on)
    if blocking:
        scope.fail(asset, {p: f"{asset} failed {gate}: {why}" for p, ok, why in results if not ok and p is not None})
    held = {str(k): why for k, why in scope.held.get(asset, {}).items() if k is not None}
    return GateVerdict(gate, asset, results, verdict, held, facts or {}, markdown or {})

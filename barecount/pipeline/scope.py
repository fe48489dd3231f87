"""`RunScope`: what the services of one run share: the connection, the organisation, the calendar, and the
decisions taken so far (periods held back), kept in memory within a step and read from the evidence across
steps."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import duckdb

from barecount.calendar import FiscalCalendar
from barecount.config.project import ProjectPaths
from barecount.evidence import holds
from barecount.pipeline.sources import Sources
from barecount.pipeline.tags import FORCE_TAG, barecount_tags


def _ignore(message: str) -> None:
    return None


@dataclass
class RunScope:
    """One run (or one step of it) as the services see it."""

    conn: duckdb.DuckDBPyConnection
    run_id: str
    org_slug: str
    calendar: FiscalCalendar
    years: tuple[int, int]
    paths: ProjectPaths | None = None
    """The project (the contract registry, proposals drafted on drift); None where nothing is landed."""
    sources: Sources | None = None
    """The sources streams land from and reconciliations read; None where nothing is landed."""
    active: Sequence[str] | None = None
    """The active periods, in calendar order: the partitions of the assets; None: every period of `years`."""
    tags: Mapping[str, str] = field(default_factory=dict)
    retry_number: int = 0
    warn: Callable[[str], None] = _ignore
    held: dict[str, dict[str | None, str]] = field(default_factory=dict)
    """Asset -> period -> why, for the periods this run left as they were (blocked, or built from one that was)."""
    failed: dict[str, dict[str, str]] = field(default_factory=dict)
    """Asset -> period -> why, for the periods written in this run that failed a gate."""
    _blocks: dict[str, dict[str, str]] | None = None
    dates_seen: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    """(input table, date column) -> distinct dates per period asked so far, each period counted once per run for
    every KPI whose coverage asks (inputs are built before the KPIs that read them, and do not change after)."""

    @classmethod
    def resume(cls, conn: duckdb.DuckDBPyConnection, run_id: str, **values: object) -> RunScope:
        """A scope for a step of run `run_id`: the periods earlier steps of the run held back, from the evidence."""
        scope = cls(conn=conn, run_id=run_id, **values)  # type: ignore[arg-type]
        for asset, period, why in holds.held_in_run_by_asset(conn, run_id):
            scope.held.setdefault(asset, {}).setdefault(period, why)
        return scope

    @property
    def forced(self) -> bool:
        """`--force` (the `barecount/force` tag): do the work even where the same work was done before."""
        return self.tags.get(FORCE_TAG) == "true"

    @property
    def launched_by(self) -> dict[str, str]:
        """The run's BareCount tags (the approval a sensor's run resumes, a backfill's reason, …)."""
        return barecount_tags(self.tags)

    @property
    def partition_keys(self) -> list[str]:
        """The periods that are partitions of the assets (else every period of the fiscal years), in calendar
        order."""
        return list(self.active) if self.active is not None else [p.key for p in self.calendar.periods(*self.years)]

    def sort_keys(self, keys: Collection[str]) -> list[str]:
        """Period keys in calendar order."""
        return sorted(keys, key=lambda k: self.calendar.period(k).start)

    def run_date(self, key: str) -> date:
        """The data date of a period: its last day."""
        return self.calendar.period(key).end

    def hold(self, asset: str, held: Mapping[str | None, str]) -> None:
        """Remember periods `asset` left alone in this run, so that what is built from them waits too."""
        for key, why in held.items():
            self.held.setdefault(asset, {}).setdefault(key, why)

    def fail(self, asset: str, failed: Mapping[str, str]) -> None:
        """Remember periods of `asset` that failed a gate in this run: what is built from them waits."""
        for key, why in failed.items():
            self.failed.setdefault(asset, {}).setdefault(key, why)

    def left_alone(self, asset: str) -> dict[str, str]:
        """Period -> why, for the periods of `asset` that the rest of the run must not build from."""
        found = {str(k): why for k, why in self.held.get(asset, {}).items() if k is not None}
        for key, why in self.failed.get(asset, {}).items():
            found.setdefault(key, why)
        return found

    def blocked_upstream(self, assets: Collection[str]) -> dict[str, str]:
        """Period -> why, for the periods a contract still blocks in any of `assets` (from any run)."""
        if self._blocks is None:
            self._blocks = {}
            for block in holds.open_blocks(self.conn):
                if block.fiscal_period is not None:
                    self._blocks.setdefault(block.asset, {}).setdefault(block.fiscal_period, block.waiting_reason())
        found: dict[str, str] = {}
        for asset in assets:
            for key, why in self._blocks.get(asset, {}).items():
                found.setdefault(key, why)
        return found

"""What a run would do, before it runs: for each asset, the periods it would build and why, and the periods
it would hold back. Reads the project files, the extracts and the evidence; writes nothing.

The reasons follow what the run's "already done" decision (`fingerprint`) hashes: the asset's code version,
its contract version and extract files (Raw), and its inputs (an input rebuilt rebuilds what reads it,
including the earlier period a model with late rows reads it for). An extract that breaks its contract
blocks its period, and everything read from a blocked or held period is held. What only the run can tell
is said as such: it repairs a period whose rows were edited outside BareCount, and judges KPI gates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from barecount.catalog.loader import LoadedSql, LoadedStream, ProjectSpecs
from barecount.contracts import ContractRegistry
from barecount.contracts.drift import extract_drift
from barecount.evidence import evidence_table_exists, holds, ledger
from barecount.pipeline.build import (
    gates_of,
    is_partitioned,
    late_periods,
    not_publishable,
    published_version,
    read_with_late,
    sql_version,
)
from barecount.pipeline.land import stream_parents, stream_version
from barecount.pipeline.sources import Sources
from barecount.specs.kpi import KpiSpec
from barecount.sql.calendar_tables import CALENDAR_TABLES

if TYPE_CHECKING:
    from barecount.config.profiles import Settings

Partition = str | None
"""A period key, or None for a snapshot."""


@dataclass
class AssetPlan:
    """One asset's part of a plan: period -> why it is built, period -> why it is held back."""

    asset: str
    build: dict[Partition, str] = field(default_factory=dict)
    held: dict[Partition, str] = field(default_factory=dict)
    unchanged: list[Partition] = field(default_factory=list)


@dataclass(frozen=True)
class Graph:
    """The project's assets in build order, each with what it reads (the calendar tables read nothing)."""

    order: list[str]
    reads: Mapping[str, list[str]]
    partitioned: frozenset[str]
    streams: Mapping[str, LoadedStream]
    sql: Mapping[str, LoadedSql]


def project_graph(specs: ProjectSpecs, registry: ContractRegistry) -> Graph:
    by_contract = {s.spec.contract: s.spec.name for s in specs.streams}
    streams = {s.asset_ref: s for s in specs.streams}
    sql = {m.asset_ref: m for m in (*specs.models, *specs.kpis)}
    reads: dict[str, list[str]] = {
        ref: [f"raw/{p}" for p in stream_parents(s, registry, by_contract)] for ref, s in streams.items()
    }
    reads |= {ref: list(m.spec.depends_on) for ref, m in sql.items()}
    reads |= {ref: [] for ref in CALENDAR_TABLES}
    for kpi in specs.kpis:
        if isinstance(kpi.spec, KpiSpec) and kpi.spec.status == "active":
            sql[f"published/{kpi.spec.id}"] = kpi
            reads[f"published/{kpi.spec.id}"] = [kpi.asset_ref]
    order: list[str] = []

    def visit(ref: str) -> None:
        if ref in order or ref not in reads:
            return
        for dep in reads[ref]:
            visit(dep)
        order.append(ref)

    for ref in reads:
        visit(ref)
    partitioned = frozenset(
        {r for r, s in streams.items() if s.spec.partitioned} | {r for r, m in sql.items() if is_partitioned(m)}
    )
    return Graph(order, reads, partitioned, streams, sql)


def plan_run(
    conn: duckdb.DuckDBPyConnection | None,
    specs: ProjectSpecs,
    registry: ContractRegistry,
    sources: Sources,
    active: Sequence[str],
    periods: Sequence[str],
    selection: Sequence[str] | None = None,
    force: bool = False,
) -> list[AssetPlan]:
    """The plan of a run of `selection` (default: every asset) over `periods` of the `active` ones (both in
    calendar order); `conn` reads the warehouse's evidence (None: nothing was built yet)."""
    graph = project_graph(specs, registry)
    chosen = set(selection or graph.order)
    built = ledger.latest_facts(conn, graph.order) if conn is not None and evidence_table_exists(conn, "ledger") else {}
    blocked_before = {
        (b.asset, b.fiscal_period): b for b in (holds.open_blocks(conn) if conn is not None else [])
    }  # blocked by an earlier run: still blocked unless the extract now fits
    plans: dict[str, AssetPlan] = {}
    for ref in graph.order:
        plan = AssetPlan(ref)
        keys: list[Partition] = list(periods) if ref in graph.partitioned else [None]
        for key in keys:
            previous = built.get((ref, key))
            if ref in graph.streams:
                held, why = _stream_reason(graph.streams[ref], key, previous, registry, sources, conn)
                if held:
                    plan.held[key] = why
                    continue
            else:
                held, why = _input_reason(graph, plans, ref, key, active, periods)
                if held:
                    plan.held[key] = why
                    continue
                why = why or _own_reason(graph, ref, previous)
                if why is None and ref.startswith("published/") and conn is not None and key is not None:
                    kpi = graph.sql[ref]
                    failed = not_publishable(conn, kpi.asset_ref, gates_of(kpi.spec), [key])  # type: ignore[arg-type]
                    if failed:  # its KPI period is not rebuilt: the verdict that holds it stands
                        plan.held[key] = failed[key]
                        continue
            if why is None and (ref, key) in blocked_before:
                why = "was blocked; the extract now fits its contract"
            if why is None and force and ref in chosen:
                why = "forced"
            if why is None:
                plan.unchanged.append(key)
            else:
                plan.build[key] = why
        plans[ref] = plan
    return [plans[ref] for ref in graph.order if ref in chosen]


def _stream_reason(
    stream: LoadedStream,
    key: Partition,
    previous: Mapping[str, Any] | None,
    registry: ContractRegistry,
    sources: Sources,
    conn: duckdb.DuckDBPyConnection | None,
) -> tuple[bool, str | None]:
    """(held, why) for one extract: blocked (it breaks its contract), new or changed; (False, None) if unchanged."""
    spec = stream.spec
    contract = registry.in_force(spec.contract, key)
    wanted = [key] if key is not None else None
    (source,) = sources.describe(spec, wanted, conn).values()
    changes = extract_drift(contract, source, spec.connector.kind != "csv")
    if any(c.breaking for c in changes):
        listed = "; ".join(f"{c.column}: {c.change}" for c in changes if c.breaking)
        return True, f"blocked: its extract breaks {contract.id} {contract.version} ({listed})"
    if previous is None:
        return False, "new: never built"
    if previous.get("contract_version") != contract.version:
        return False, f"contract version {previous.get('contract_version')} -> {contract.version}"
    (files,) = sources.fingerprints(spec, wanted, conn).values()
    if [f["sha256"] for f in files] != [f.get("sha256") for f in previous.get("source_files_read") or []]:
        return False, "extract changed"
    if previous.get("code_version") != stream_version(stream):
        return False, "stream declaration changed"
    return False, None


def _read_periods(
    graph: Graph, ref: str, dep: str, key: Partition, active: Sequence[str], periods: Sequence[str]
) -> list[Partition]:
    """The partitions of `dep` that partition `key` of `ref` reads: the same period and, for a model that takes
    late rows, the next active ones; or the snapshot."""
    if dep not in graph.partitioned:
        return [None]
    if key is None:  # an unpartitioned asset over a partitioned one is refused by `check`
        return list(periods)
    item = graph.sql.get(ref)
    late = late_periods(item) if item is not None and not ref.startswith("published/") else 0
    return list(read_with_late([key], late, active))


def _input_reason(
    graph: Graph, plans: Mapping[str, AssetPlan], ref: str, key: Partition, active: Sequence[str],
    periods: Sequence[str],
) -> tuple[bool, str | None]:  # fmt: skip
    """(held, why) from the inputs: an input period held back holds this one; an input rebuilt rebuilds it."""
    rebuilt: list[str] = []
    for dep in graph.reads[ref]:
        upstream = plans.get(dep)
        if upstream is None:
            continue
        for read in _read_periods(graph, ref, dep, key, active, periods):
            if read in upstream.held:
                if read != key:  # a later period held back: this one is built without its late rows, as runs do
                    continue
                return True, f"{dep} {read or 'snapshot'} is held back: {upstream.held[read]}"
            if read in upstream.build:
                rebuilt.append(dep if read == key else f"late rows from the next period's {dep}")
    return False, (f"input rebuilt: {', '.join(dict.fromkeys(rebuilt))}" if rebuilt else None)


def _own_reason(graph: Graph, ref: str, previous: Mapping[str, Any] | None) -> str | None:
    """Why a model, KPI, published or calendar table is rebuilt by itself: never built, or its code changed (the
    calendar tables follow the calendar file, which the run reads)."""
    if previous is None:
        return "new: never built"
    if ref in CALENDAR_TABLES:
        return None
    item = graph.sql[ref]
    version = published_version(item) if ref.startswith("published/") else sql_version(item)
    if previous.get("code_version") != version:
        return "code changed"
    return None


def plan_in_warehouse(
    settings: Settings, periods: Sequence[str], selection: Sequence[str] | None, force: bool
) -> list[AssetPlan]:
    """`plan_run` for the organisation of `settings`, reading its warehouse read-only (when there is one)."""
    from barecount.catalog.loader import load_project_specs
    from barecount.pipeline.connectors import SourceFiles
    from barecount.pipeline.periods import active_periods
    from barecount.warehouse.connection import warehouse_file

    specs = load_project_specs(settings.paths)
    registry = ContractRegistry.load(settings.paths)
    sources = Sources(SourceFiles(root=str(settings.sources_dir)), settings.calendar)

    def planned(conn: duckdb.DuckDBPyConnection | None) -> list[AssetPlan]:
        return plan_run(conn, specs, registry, sources, active_periods(settings), periods, selection, force)

    warehouse = warehouse_file(settings)
    reads_bigquery = any(s.spec.connector.kind == "bigquery" for s in specs.streams)
    if not reads_bigquery and not warehouse.exists():  # a BigQuery source is read through a session
        return planned(None)
    with warehouse.get_connection(read_only=True) as conn:
        return planned(conn)

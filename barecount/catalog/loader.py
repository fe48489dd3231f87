"""Read every declarative file of a project, collecting all errors before raising any.

Cross-file rules live here: names are unique, `depends_on` names known assets, and the SQL reads
exactly the tables it declares.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from barecount.catalog.planning import Plan, PlannedSql, contract_in_force, plan_sql, raw_columns
from barecount.config.kept import KEPT, files_state, kept
from barecount.config.project import ProjectPaths
from barecount.contracts import ContractRegistry
from barecount.errors import SpecError, SpecErrors
from barecount.specs.kpi import KpiSpec
from barecount.specs.model import ModelSpec
from barecount.specs.stream import StreamsFile, StreamSpec
from barecount.sql.binding import SqlInputError, output_columns, referenced_tables
from barecount.sql.calendar_tables import CALENDAR_TABLES
from barecount.sql.pii import UntraceableSql, column_sources, mask_sql
from barecount.sql.relation import PARTITION_COLUMN
from barecount.sql.survivorship import survivorship_sql
from barecount.yaml_source import Location, dotted, load_yaml, parse_spec


@dataclass(frozen=True)
class LoadedStream:
    """A stream with the file it came from."""

    spec: StreamSpec
    domain: str
    file: str
    line: int
    contract_at: tuple[int, int] = (0, 0)
    """Line and column of the stream's `contract` field, for messages about it."""
    index: int = 0
    """The stream's place in its file's list, as messages name its fields (`streams[<index>]`)."""
    connector_kind_at: tuple[int, int] = (0, 0)
    """Line and column of the stream's `connector.kind`."""

    @property
    def asset_ref(self) -> str:
        return f"raw/{self.spec.name}"

    @property
    def pipeline_id(self) -> str:
        return self.spec.pipeline_id or f"{self.domain}.{self.spec.name}"


@dataclass(frozen=True)
class LoadedSql:
    """A GDP model or a KPI version: its spec, its SQL and the files they came from."""

    spec: ModelSpec | KpiSpec
    domain: str
    sql: str
    spec_file: str
    sql_file: str

    @property
    def layer(self) -> str:
        return "kpi" if isinstance(self.spec, KpiSpec) else "gdp"

    @property
    def name(self) -> str:
        """The table name: gdp.<name>, kpi.<id> or, for a candidate KPI version, kpi.<id>__v<x_y_z>."""
        return self.spec.table_name if isinstance(self.spec, KpiSpec) else self.spec.name

    @property
    def publishes(self) -> bool:
        """The active version of a KPI, the one `published/<id>` takes."""
        return isinstance(self.spec, KpiSpec) and self.spec.status == "active"

    @property
    def asset_ref(self) -> str:
        return f"{self.layer}/{self.name}"


@dataclass(frozen=True)
class ProjectSpecs:
    """Everything a project declares, validated and cross-checked."""

    streams: tuple[LoadedStream, ...]
    models: tuple[LoadedSql, ...]
    kpis: tuple[LoadedSql, ...]

    def asset_refs(self) -> list[str]:
        return [s.asset_ref for s in self.streams] + [m.asset_ref for m in (*self.models, *self.kpis)]

    def published_kpis(self) -> dict[str, KpiSpec]:
        """KPI id -> its active version: the one `published/<id>` takes."""
        return {k.spec.id: k.spec for k in self.kpis if k.publishes and isinstance(k.spec, KpiSpec)}

    def masking(self, selected: Iterable[str] | None = None) -> list[tuple[str, dict[str, str]]]:
        """(model, its PII treatments) for every model, or those among `selected` asset keys, that masks a column."""
        chosen = None if selected is None else set(selected)
        return [
            (m.asset_ref, dict(m.spec.pii))
            for m in self.models
            if isinstance(m.spec, ModelSpec) and m.spec.pii and (chosen is None or m.asset_ref in chosen)
        ]


@dataclass
class _Collector:
    paths: ProjectPaths
    errors: list[SpecError] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)
    """Assets whose SQL could not be read, or that read an asset that is missing: not checked further."""
    unloaded: dict[str, str] = field(default_factory=dict)
    """Asset -> the file that would declare it but failed to load (`raw/*` for a streams file)."""

    def shown(self, path: Path) -> str:
        return self.paths.relative(path)

    def add(self, path: Path, loc: str, reason: str, line: int = 0, column: int = 0) -> None:
        self.errors.append(SpecError(self.shown(path), line, column, loc, reason))


def _domains(paths: ProjectPaths) -> Iterator[Path]:
    if paths.assets.is_dir():
        yield from sorted(d for d in paths.assets.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))


def _load_streams(c: _Collector) -> list[LoadedStream]:
    loaded: list[LoadedStream] = []
    for domain in _domains(c.paths):
        file = domain / "streams.yaml"
        if not file.is_file():
            continue
        try:
            parsed = parse_spec(file, StreamsFile, c.shown(file))
            _, positions = load_yaml(file)
        except SpecErrors as exc:
            c.errors.extend(exc.errors)
            c.unloaded.setdefault("raw/*", c.shown(file))
            continue
        for index, stream in enumerate(parsed.streams):
            line = positions.get(("streams", index), (0, 0))[0]
            contract_at = positions.get(("streams", index, "contract"), (line, 0))
            kind_at = positions.get(("streams", index, "connector", "kind"), (line, 0))
            loaded.append(LoadedStream(stream, domain.name, c.shown(file), line, contract_at, index, kind_at))
    return loaded


def _read_sql(c: _Collector, sql_file: Path, spec_file: Path) -> str | None:
    if not sql_file.is_file():
        c.add(spec_file, "", f"no SQL file {c.shown(sql_file)} beside it")
        return None
    return sql_file.read_text(encoding="utf-8")


def _load_sql_spec(
    c: _Collector,
    spec_file: Path,
    model: type[ModelSpec] | type[KpiSpec],
    domain: str,
    expected: dict[str, str],
    ref: str,
) -> LoadedSql | None:
    """One spec YAML and the SQL beside it; `expected` maps a field to the value its file or folder name gives.

    `ref` is the asset the file declares: what reads it is told the file failed, not that it is unknown.
    """
    loaded = _read_sql_spec(c, spec_file, model, domain, expected)
    if loaded is None:
        c.unloaded.setdefault(ref, c.shown(spec_file))
    return loaded


def _read_sql_spec(
    c: _Collector, spec_file: Path, model: type[ModelSpec] | type[KpiSpec], domain: str, expected: dict[str, str]
) -> LoadedSql | None:
    try:
        spec = parse_spec(spec_file, model, c.shown(spec_file))
    except SpecErrors as exc:
        c.errors.extend(exc.errors)
        return None
    for field_name, wanted in expected.items():
        actual = getattr(spec, field_name)
        if actual != wanted:
            line, column = load_yaml(spec_file)[1].get((field_name,), (0, 0))
            c.add(spec_file, field_name, f"'{actual}' does not match its file or folder name '{wanted}'", line, column)
            return None
    sql_file = spec_file.with_suffix(".sql")
    if isinstance(spec, ModelSpec) and spec.survivorship is not None:
        if sql_file.is_file():
            c.add(spec_file, "survivorship", f"a survivorship model's SQL is generated: remove {c.shown(sql_file)}")
            return None
        # the generated SQL stands where a file would be; the spec file is its source
        return LoadedSql(spec, domain, survivorship_sql(spec.survivorship), c.shown(spec_file), c.shown(spec_file))
    sql = _read_sql(c, sql_file, spec_file)
    return None if sql is None else LoadedSql(spec, domain, sql, c.shown(spec_file), c.shown(sql_file))


def _load_models(c: _Collector) -> list[LoadedSql]:
    loaded = (
        _load_sql_spec(c, spec_file, ModelSpec, domain.name, {"name": spec_file.stem}, f"gdp/{spec_file.stem}")
        for domain in _domains(c.paths)
        for spec_file in sorted((domain / "gdp").glob("*.yaml"))
    )
    return [item for item in loaded if item is not None]


BUILT_STATUSES = ("active", "candidate")


def _load_kpis(c: _Collector) -> list[LoadedSql]:
    """The one active version of each KPI folder, and its candidate versions."""
    loaded: list[LoadedSql] = []
    if not c.paths.kpis.is_dir():
        return loaded
    for kpi_dir in sorted(d for d in c.paths.kpis.iterdir() if d.is_dir()):
        versions = (
            _load_sql_spec(
                c, spec_file, KpiSpec, "kpi", {"id": kpi_dir.name, "version": spec_file.stem}, f"kpi/{kpi_dir.name}"
            )
            for spec_file in sorted(kpi_dir.glob("*.yaml"))
        )
        built = [v for v in versions if v is not None and getattr(v.spec, "status", "") in BUILT_STATUSES]
        active = [v for v in built if v.publishes]
        if len(active) > 1:
            c.add(kpi_dir, "status", f"more than one active version: {', '.join(k.spec_file for k in active)}")
        loaded.extend(v for v in built if not v.publishes or v is active[0])
    return loaded


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_kpi_columns(c: _Collector, item: LoadedSql, returned: list[str] | None, where: str) -> None:
    """The SQL at `where` (the KPI's own, or its reconciliation) returns the period, dimensions and measures."""
    spec = item.spec
    assert isinstance(spec, KpiSpec)
    if returned is None:
        return
    positions = load_yaml(c.paths.root / item.spec_file)[1]
    shown = ", ".join(returned)
    if PARTITION_COLUMN not in returned:
        c.errors.append(SpecError(item.spec_file, 0, 0, where, f"the SQL returns no {PARTITION_COLUMN} ({shown})"))
    for field_name, names in (("dimensions", spec.dimensions), ("measures", spec.measure_columns)):
        for index, name in enumerate(names):
            if name not in returned:
                loc: Location = (field_name, index) if spec.measures or field_name == "dimensions" else (field_name,)
                if where:  # the reconciliation's SQL is what is wrong, not the KPI's list
                    loc = tuple(where.split("."))
                line, column = positions.get(loc, (0, 0))
                kind = field_name[:-1]
                reason = f"{kind} '{name}' is not a column the {where or 'KPI'} SQL returns (it returns {shown})"
                c.errors.append(SpecError(item.spec_file, line, column, dotted(loc), reason))


def _check_model_columns(c: _Collector, item: LoadedSql, returned: list[str] | None) -> None:
    """The primary key and every tested column are columns the model's SQL returns."""
    spec = item.spec
    assert isinstance(spec, ModelSpec)
    if returned is None:
        return
    positions = load_yaml(c.paths.root / item.spec_file)[1]
    named: list[tuple[Location, str]] = [(("primary_key", i), col) for i, col in enumerate(spec.primary_key)]
    named += [(("tests", "not_null", i), col) for i, col in enumerate(spec.tests.not_null)]
    named += [(("tests", "accepted_values", col), col) for col in spec.tests.accepted_values]
    for loc, column in named:
        if column not in returned:
            line, col = positions.get(loc, (0, 0))
            reason = f"'{column}' is not a column the SQL returns{_suggest(column, returned)}"
            c.errors.append(SpecError(item.spec_file, line, col, dotted(loc), reason))


def _check_reconciliation(c: _Collector, item: LoadedSql, streams: set[str]) -> None:
    """A reconciliation reads only source extracts and the calendar, and returns the KPI's columns."""
    spec = item.spec
    if not isinstance(spec, KpiSpec) or spec.reconciliation is None:
        return
    where = "reconciliation.sql"
    try:
        tables = referenced_tables(spec.reconciliation.sql)
    except SqlInputError as exc:
        c.errors.append(SpecError(item.spec_file, 0, 0, where, str(exc)))
        return
    allowed = {f"source.{s}" for s in streams} | {ref.replace("/", ".") for ref in CALENDAR_TABLES}
    unloaded = c.unloaded.get("raw/*", "")  # a streams file that failed to load would declare the stream
    for table in sorted(tables - allowed):
        follows = unloaded if table.startswith("source.") else ""
        hint = f" ({unloaded} failed to load)" if follows else _suggest(table, sorted(allowed))
        reason = (
            f"reads {table}: a reconciliation reads the system of record as source.<stream> "
            f"(and the calendar.* tables){hint}"
        )
        c.errors.append(SpecError(item.spec_file, 0, 0, where, reason, follows))
    _check_kpi_columns(c, item, output_columns(spec.reconciliation.sql), where)


def _check_graph(c: _Collector, specs: ProjectSpecs) -> None:
    seen: dict[str, str] = dict.fromkeys(CALENDAR_TABLES, "(built in)")
    for ref, file in [(s.asset_ref, s.file) for s in specs.streams] + [
        (m.asset_ref, m.spec_file) for m in (*specs.models, *specs.kpis)
    ]:
        if ref in seen:
            c.errors.append(SpecError(file, 0, 0, "name", f"asset {ref} is already declared in {seen[ref]}"))
        seen[ref] = file
    known = list(seen)
    partitioned = {s.asset_ref for s in specs.streams if s.spec.partitioned} | {
        m.asset_ref for m in (*specs.models, *specs.kpis) if isinstance(m.spec, KpiSpec) or m.spec.partitioned
    }
    for item in (*specs.models, *specs.kpis):
        deps = item.spec.depends_on
        spec_path = c.paths.root / item.spec_file
        _, positions = load_yaml(spec_path)
        for index, dep in enumerate(deps):
            if dep in partitioned and item.asset_ref not in partitioned:
                # the fiscal periods are built in one step after the snapshots (barecount.defs.layers)
                line, column = positions.get(("partitioned",), positions.get(("depends_on", index), (0, 0)))
                reason = f"an unpartitioned model cannot read the partitioned {dep}: make it partitioned: true"
                c.errors.append(SpecError(item.spec_file, line, column, "partitioned", reason))
            if dep not in seen:
                loc: Location = ("depends_on", index)
                line, column = positions.get(loc, (0, 0))
                source = c.unloaded.get(dep) or (c.unloaded.get("raw/*", "") if dep.startswith("raw/") else "")
                hint = f" ({source} would declare it, and failed to load)" if source else _suggest(dep, known)
                reason = f"unknown asset '{dep}'{hint}"
                c.errors.append(SpecError(item.spec_file, line, column, dotted(loc), reason, source))
                c.broken.add(item.asset_ref)
        try:
            tables = referenced_tables(item.sql)
        except SqlInputError as exc:
            c.errors.append(SpecError(item.sql_file, exc.line, exc.column, "", str(exc)))
            c.broken.add(item.asset_ref)
            continue
        if isinstance(item.spec, KpiSpec):
            _check_reconciliation(c, item, {s.spec.name for s in specs.streams})
        declared = {d.replace("/", ".") for d in deps}
        line, column = positions.get(("depends_on",), (0, 0))
        for table in sorted(tables - declared):
            reason = f"the SQL reads {table} but depends_on does not list {table.replace('.', '/')}"
            c.errors.append(SpecError(item.spec_file, line, column, "depends_on", reason))
        for table in sorted(declared - tables):
            reason = f"lists {table.replace('.', '/')} but the SQL never reads {table}"
            c.errors.append(SpecError(item.spec_file, line, column, "depends_on", reason))


def _check_contracts(c: _Collector, streams: tuple[LoadedStream, ...]) -> ContractRegistry | None:
    """Every contract file is valid, and every stream names a contract that exists."""
    try:
        registry = ContractRegistry.load(c.paths)
    except SpecErrors as exc:
        c.errors.extend(exc.errors)
        return None
    known = registry.ids()
    for stream in streams:
        if stream.spec.contract not in known:
            reason = f"unknown contract '{stream.spec.contract}'{_suggest(stream.spec.contract, known)}"
            line, column = stream.contract_at
            c.errors.append(SpecError(stream.file, line, column, f"{stream.spec.name}.contract", reason))
    return registry


def _plan(c: _Collector, specs: ProjectSpecs, registry: ContractRegistry) -> Plan:
    """Run every model's and KPI's SQL on empty tables: see `planning`."""
    raw = {
        f"raw.{stream.spec.name}": raw_columns(
            contract_in_force(registry, stream.spec.contract), stream.spec.partitioned
        )
        for stream in specs.streams
        if stream.spec.contract in registry.ids()
    }
    items = [
        PlannedSql(
            ref=item.asset_ref,
            depends_on=tuple(item.spec.depends_on),
            sql=mask_sql(item.sql, item.spec.pii) if isinstance(item.spec, ModelSpec) else item.sql,
            written=item.sql,
            sql_file=item.sql_file,
            spec_file=item.spec_file,
            measures=tuple(item.spec.measure_columns) if isinstance(item.spec, KpiSpec) else (),
        )
        for item in (*specs.models, *specs.kpis)
    ]
    plan = plan_sql(raw, items, skip=c.broken)
    c.errors.extend(plan.errors)
    return plan


def _check_columns(c: _Collector, specs: ProjectSpecs, plan: Plan | None) -> None:
    """Columns the specs name are columns the SQL returns: as written, or (for `*`) as planned."""
    for item in (*specs.models, *specs.kpis):
        if item.asset_ref in c.broken:
            continue
        returned = output_columns(item.sql)
        if returned is None and plan is not None:
            returned = plan.returned.get(item.asset_ref)
        if isinstance(item.spec, ModelSpec):
            _check_model_columns(c, item, returned)
        else:
            _check_kpi_columns(c, item, returned, "")


def _check_personal_data(c: _Collector, specs: ProjectSpecs, registry: ContractRegistry, plan: Plan) -> None:
    """No model or KPI passes a column the contracts tag as PII on unmasked: each must be declared under `pii`.

    An allowlist: every output column of SQL that reads a table with personal data is traced to the
    columns it comes from, and SQL whose columns cannot all be traced is refused.
    """
    personal: dict[str, str] = {}
    for stream in specs.streams:
        if stream.spec.contract in registry.ids():
            contract = contract_in_force(registry, stream.spec.contract)
            personal |= {f"raw.{stream.spec.name}.{col.name}": contract.id for col in contract.columns if col.pii}
    personal_inputs = {"raw/" + ref.split(".")[1] for ref in personal}
    schema = plan.schema()
    for item in (*specs.models, *specs.kpis):
        if item.asset_ref in plan.failed:
            continue
        masked = item.spec.pii if isinstance(item.spec, ModelSpec) else {}
        survivorship = item.spec.survivorship if isinstance(item.spec, ModelSpec) else None
        if survivorship is not None:
            sources = {
                attribute: {
                    f"{survivorship.sources[s].asset.replace('/', '.')}.{column}" for s, column in rule.columns.items()
                }
                for attribute, rule in survivorship.attributes.items()
            }
        elif personal_inputs & set(item.spec.depends_on):
            try:
                sources = column_sources(item.sql, schema)
            except UntraceableSql as exc:
                reason = f"it reads personal data and {exc}; select named columns, and mask personal ones under pii"
                c.errors.append(SpecError(item.sql_file, 0, 0, "", reason))
                continue
        else:  # column lineage costs ~50 ms a model: only SQL reading a table with personal data needs it (the
            sources = {}  # graph check has made `depends_on` exactly the tables the SQL reads)
        for column, origins in sorted(sources.items()):
            leaked = sorted(o for o in origins if o in personal)
            if leaked and column not in masked:
                reason = (
                    f"column {column} carries personal data from {', '.join(leaked)} "
                    f"(contract {personal[leaked[0]]}); declare how to mask it under pii (hash or redact)"
                )
                c.errors.append(SpecError(item.spec_file, 0, 0, "pii", reason))


_LOADED: dict[tuple[str, str], ProjectSpecs] = {}
"""The specs last loaded, by project and the state of its files: one command loads them several times (the
periods, the definitions, the summary), and planning the SQL costs a tenth of a second each time."""

SPECS_CACHE = f"{KEPT}/project-specs.pickle"
"""Under the project's data folder: the specs the last process loaded (`config.kept`)."""


def load_project_specs(paths: ProjectPaths) -> ProjectSpecs:
    """Load streams, models, KPIs and contracts; raise one `SpecErrors` listing every problem found."""
    key = (str(paths.root.resolve()), files_state(paths.assets, paths.contracts, paths.kpis, paths.resources))
    if key not in _LOADED:
        specs = kept(paths.data / SPECS_CACHE, key, lambda: _load_project_specs(paths))
        _LOADED.clear()
        _LOADED[key] = specs
    return _LOADED[key]


def _load_project_specs(paths: ProjectPaths) -> ProjectSpecs:
    collector = _Collector(paths)
    specs = ProjectSpecs(
        streams=tuple(_load_streams(collector)),
        models=tuple(_load_models(collector)),
        kpis=tuple(_load_kpis(collector)),
    )
    _check_graph(collector, specs)
    registry = _check_contracts(collector, specs.streams)
    plan = None if registry is None else _plan(collector, specs, registry)
    _check_columns(collector, specs, plan)
    if registry is not None and plan is not None:
        _check_personal_data(collector, specs, registry, plan)
    if collector.errors:
        raise SpecErrors(collector.errors)
    return specs

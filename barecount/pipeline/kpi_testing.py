"""`barecount kpi test`: each KPI's SQL on small input tables, against the rows its owner expects.

A fixture is `kpis/<kpi>/tests/<name>.yaml`. It runs in an in-memory DuckDB where each input is a
table of the same name (`gdp.order_lines`), so the KPI's SQL runs exactly as written. The fiscal
calendar table is the project's own unless the fixture brings one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import duckdb

from barecount.calendar import FiscalCalendar
from barecount.catalog.loader import LoadedSql
from barecount.config.project import ProjectPaths
from barecount.errors import SpecError, SpecErrors, UsageError
from barecount.specs.kpi import KpiFixture, KpiSpec
from barecount.sql.calendar_tables import CALENDAR_TABLES, calendar_table_sql
from barecount.sql.relation import PARTITION_COLUMN, quote_ident
from barecount.yaml_source import load_yaml, parse_spec

FIXTURES_FOLDER = "tests"
FLOAT_TOLERANCE = 1e-9
"""Relative difference allowed where the KPI returns a floating-point number (averages, ratios)."""


@dataclass(frozen=True)
class LoadedFixture:
    kpi: LoadedSql
    fixture: KpiFixture
    file: str


@dataclass(frozen=True)
class FixtureOutcome:
    kpi: str
    version: str
    file: str
    description: str
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def load_fixtures(paths: ProjectPaths, kpis: Sequence[LoadedSql], only: Sequence[str] = ()) -> list[LoadedFixture]:
    """Every fixture of the KPIs (or of the ids in `only`), each matched to the KPI version it tests."""
    by_id: dict[str, dict[str, LoadedSql]] = {}
    for item in kpis:
        assert isinstance(item.spec, KpiSpec)
        by_id.setdefault(item.spec.id, {})[item.spec.version] = item
    unknown = sorted(set(only) - set(by_id))
    if unknown:
        raise UsageError(f"unknown KPI {', '.join(unknown)} (known: {', '.join(sorted(by_id))})")
    loaded: list[LoadedFixture] = []
    errors: list[SpecError] = []
    for kpi_id, versions in sorted(by_id.items()):
        if only and kpi_id not in only:
            continue
        active = next((v for v in versions.values() if v.publishes), None)
        for file in sorted((paths.kpis / kpi_id / FIXTURES_FOLDER).glob("*.yaml")):
            shown = paths.relative(file)
            try:
                fixture = parse_spec(file, KpiFixture, shown)
            except SpecErrors as exc:
                errors.extend(exc.errors)
                continue
            item = versions.get(fixture.version) if fixture.version else active
            if item is None:
                wanted = fixture.version or "active"
                line, column = load_yaml(file)[1].get(("version",), (0, 0))
                reason = f"no built (active or candidate) version {wanted} of {kpi_id}: {', '.join(sorted(versions))}"
                errors.append(SpecError(shown, line, column, "version", reason))
                continue
            missing = sorted(set(item.spec.depends_on) - set(fixture.inputs) - set(CALENDAR_TABLES))
            extra = sorted(set(fixture.inputs) - set(item.spec.depends_on))
            for ref in missing:
                reason = f"the KPI reads {ref} but the fixture gives no rows for it"
                errors.append(SpecError(shown, 0, 0, "inputs", reason))
            for ref in extra:
                errors.append(SpecError(shown, 0, 0, f"inputs.{ref}", f"{item.spec.id} does not read {ref}"))
            if not missing and not extra:
                loaded.append(LoadedFixture(item, fixture, shown))
    if errors:
        raise SpecErrors(errors)
    return loaded


def _same(expected: object, actual: object) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None:
        return expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float, Decimal)):
        try:
            if Decimal(str(expected)) == Decimal(str(actual)):
                return True
        except InvalidOperation:
            return False
        return isinstance(actual, float) and math.isclose(float(expected), actual, rel_tol=FLOAT_TOLERANCE)
    return str(expected) == str(actual)


def _shown(row: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.items())


def run_fixture(loaded: LoadedFixture, calendar: FiscalCalendar, years: tuple[int, int]) -> FixtureOutcome:
    """Load the fixture's tables, run the KPI's SQL, and list every difference from the expected rows."""
    spec = loaded.kpi.spec
    assert isinstance(spec, KpiSpec)
    fixture = loaded.fixture
    keys = [PARTITION_COLUMN, *spec.dimensions]
    problems: list[str] = []
    with duckdb.connect() as conn:
        tables = dict(fixture.inputs)
        for ref, table in tables.items():
            schema, name = ref.split("/")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            columns = ", ".join(f"{quote_ident(c)} {kind}" for c, kind in table.columns.items())
            conn.execute(f"CREATE TABLE {quote_ident(schema)}.{quote_ident(name)} ({columns})")
            if table.rows:
                marks = ", ".join("?" for _ in table.columns)
                conn.executemany(f"INSERT INTO {quote_ident(schema)}.{quote_ident(name)} VALUES ({marks})", table.rows)
        for ref in sorted(set(CALENDAR_TABLES) & set(spec.depends_on) - set(tables)):
            conn.execute("CREATE SCHEMA IF NOT EXISTS calendar")
            conn.execute(f"CREATE TABLE {ref.replace('/', '.')} AS {calendar_table_sql(ref, calendar, years)}")
        try:
            cursor = conn.execute(loaded.kpi.sql)
            names = [d[0] for d in cursor.description]
            actual = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except duckdb.Error as exc:
            problems.append(f"the SQL failed: {str(exc).splitlines()[0]}")
            actual = []
    if not problems:
        expected_by_key = {tuple(str(r.get(k)) for k in keys): r for r in fixture.expect}
        actual_by_key = {tuple(str(r.get(k)) for k in keys): r for r in actual}
        for key, want in expected_by_key.items():
            got = actual_by_key.get(key)
            if got is None:
                problems.append(f"missing row {_shown(want)}")
                continue
            for column, value in want.items():
                if column not in got:
                    problems.append(f"{', '.join(key)}: the SQL returns no column {column}")
                elif not _same(value, got[column]):
                    problems.append(f"{', '.join(key)}: {column} is {got[column]}, expected {value}")
        for key, got in actual_by_key.items():
            if key not in expected_by_key:
                shown = {k: got[k] for k in keys + spec.measure_columns if k in got}
                problems.append(f"unexpected row {_shown(shown)}")
    return FixtureOutcome(spec.id, spec.version, loaded.file, fixture.description, tuple(problems))

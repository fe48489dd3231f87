"""`Sources`: where streams land from, whatever their connector: files under the profile's sources folder
(`connectors.SourceFiles`) or BigQuery tables and queries (`source_tables.SourceTables`, BigQuery profiles only).
The services ask it, never a connector directly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from barecount.calendar import FiscalCalendar
from barecount.errors import RefusedError, SpecError
from barecount.pipeline.connectors import BadSourceFile, SourceFiles
from barecount.specs.kpi import KpiSpec
from barecount.specs.stream import StreamSpec
from barecount.sql.binding import referenced_tables
from barecount.sql.relation import Column
from barecount.warehouse.connection import Connection, on_bigquery

if TYPE_CHECKING:
    from barecount.catalog.loader import ProjectSpecs
    from barecount.pipeline.source_tables import SourceTables

SourceFingerprints = dict[str | None, list[dict[str, object]]]


@dataclass(frozen=True)
class Sources:
    """The streams' sources: `files` for file connectors, `calendar` to date a BigQuery query's periods."""

    files: SourceFiles
    calendar: FiscalCalendar

    def describe(
        self, stream: StreamSpec, partition_keys: Sequence[str] | None, conn: Connection | None
    ) -> dict[str | None, list[Column]]:
        """Each extract's own schema (`partition_keys` None: the snapshot's), read without its rows."""
        if stream.connector.kind == "bigquery":
            return self._tables(stream, conn).describe(stream, partition_keys)
        return self.files.describe(stream, partition_keys)

    def scan_sql(
        self, stream: StreamSpec, partition_keys: Sequence[str] | None, source: Sequence[Column], conn: Connection
    ) -> str:
        """A SELECT on `conn` of the extracts' rows as delivered (`source`: their shape), with where each came
        from; see `SourceFiles.scan_sql`."""
        if stream.connector.kind == "bigquery":
            return self._tables(stream, conn).scan_sql(stream, partition_keys)
        return self.files.scan_sql(stream, partition_keys, source, conn)

    def fingerprints(
        self, stream: StreamSpec, partition_keys: Sequence[str] | None, conn: Connection | None
    ) -> SourceFingerprints:
        """Each extract as evidence: where it is, and a hash of its content."""
        if stream.connector.kind == "bigquery":
            return self._tables(stream, conn).fingerprints(stream, partition_keys)
        return self.files.fingerprints(stream, partition_keys)

    def extract_date(self, stream: StreamSpec) -> date:
        """The date an unpartitioned snapshot was extracted."""
        if stream.connector.kind == "bigquery":
            from barecount.pipeline.source_tables import SourceTables

            return SourceTables.extract_date(stream)
        return self.files.extract_date(stream)

    def undecodable(self, error: Exception, stream: StreamSpec) -> BadSourceFile | None:
        """The bad-file error an extract's text that is not UTF-8 raised, if it was that; see `SourceFiles`."""
        return None if stream.connector.kind == "bigquery" else self.files.undecodable(error, stream)

    def check_present(self, stream: StreamSpec, partition_keys: Sequence[str] | None) -> None:
        """Raise `SourceMissingError` if a file the periods need is missing (a BigQuery source is looked up
        when it is read)."""
        if stream.connector.kind != "bigquery":
            self.files.files_for(stream, partition_keys)

    def _tables(self, stream: StreamSpec, conn: Connection | None) -> SourceTables:
        if conn is None or not on_bigquery(conn):
            raise RefusedError(
                f"stream {stream.name} reads BigQuery (connector.kind: bigquery): run it with a BigQuery profile "
                "(--profile bigquery)"
            )
        from barecount.pipeline.source_tables import SourceTables

        return SourceTables(conn, self.calendar)


def source_problems(specs: ProjectSpecs, on_bigquery_profile: bool) -> list[SpecError]:
    """What the project's connectors ask that the profile cannot do: a BigQuery source on a DuckDB profile, and
    a KPI reconciled against a stream read from BigQuery (the system of record is recomputed from extracts on
    this machine)."""
    read_from_bigquery = {s.spec.name: s for s in specs.streams if s.spec.connector.kind == "bigquery"}
    problems = []
    if not on_bigquery_profile:
        problems += [
            SpecError(
                s.file,
                *s.connector_kind_at,
                f"streams[{s.index}].connector.kind",
                f"stream {s.spec.name} reads BigQuery: run it with a BigQuery profile (--profile bigquery)",
            )
            for s in read_from_bigquery.values()
        ]
    for kpi in specs.kpis:
        if not isinstance(kpi.spec, KpiSpec) or kpi.spec.reconciliation is None:
            continue
        tables = referenced_tables(kpi.spec.reconciliation.sql)
        read = sorted(t.split(".", 1)[1] for t in tables if t.startswith("source."))
        problems += [
            SpecError(
                kpi.spec_file, 0, 0, "reconciliation.sql",
                f"source.{name} is read from BigQuery: a reconciliation recomputes the system of record from "
                "source files only",
            )
            for name in read
            if name in read_from_bigquery
        ]  # fmt: skip
    return problems

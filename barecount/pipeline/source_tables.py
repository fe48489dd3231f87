"""The BigQuery connector: a stream read from an existing BigQuery table or query (the seed's
`ExternalBqExtractor`), on BigQuery profiles, through the run's own session.

The source is BigQuery's, not BareCount's: its table names are used as written (no dataset prefix) and its
query is BigQuery SQL, run as written. A run copies what it lands into a staging table first, so that the checks
and the split read one snapshot of a source that may change meanwhile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from google.api_core.exceptions import NotFound
from google.cloud import bigquery

from barecount.calendar import FiscalCalendar
from barecount.contracts.drift import UNSIZED_DECIMAL, UNSIZED_INTEGER
from barecount.errors import WarehouseQueryError
from barecount.pipeline.connectors import (
    SOURCE_FILE,
    SOURCE_ROW,
    UNPARSABLE,
    BadSourceFile,
    SourceMissingError,
    period_keys,
    short_digest,
)
from barecount.specs.stream import PERIOD_PLACEHOLDER, StreamSpec
from barecount.sql.relation import PARTITION_COLUMN, Column
from barecount.warehouse.bigquery import STAGING, BigQueryConnection, duckdb_type


@dataclass(frozen=True)
class SourceTables:
    """Streams whose connector is `kind: bigquery`, read on `conn`; `calendar` dates a query's periods."""

    conn: BigQueryConnection
    calendar: FiscalCalendar

    def describe(self, stream: StreamSpec, partition_keys: Sequence[str] | None) -> dict[str | None, list[Column]]:
        """Each period's source schema: a table's from its metadata, a query's from its result (where BigQuery
        drops a NUMERIC's precision)."""
        found: dict[str | None, list[Column]] = {}
        for key in period_keys(partition_keys):
            if stream.connector.table is not None:
                name = self._table(stream, key)
                try:
                    schema = self.conn.client.get_table(name).schema
                except NotFound:
                    raise SourceMissingError(
                        f"stream {stream.name}: no BigQuery table {name} (connector.table '{stream.connector.table}')"
                    ) from None
            else:
                schema = self._run(stream, key, f"SELECT * FROM {self._relation(stream, key)} LIMIT 0").schema or []
            found[key] = [Column(f.name, _source_type(f)) for f in schema]
        return found

    def scan_sql(self, stream: StreamSpec, partition_keys: Sequence[str] | None) -> str:
        """A SELECT of the periods' rows as the source holds them now, with where each came from (the source's
        name, and the row's place in an order by content: a table has no delivery order, so of two rows with one
        key the one kept does not depend on how BigQuery happens to read them)."""
        keys = period_keys(partition_keys)
        selects = [
            f"SELECT t.*, '{self._origin(stream, key)}' AS {SOURCE_FILE}, "
            f"ROW_NUMBER() OVER (ORDER BY TO_JSON_STRING(t)) AS {SOURCE_ROW}, CAST(NULL AS STRING) AS {UNPARSABLE}"
            + (f", '{key}' AS {PARTITION_COLUMN}" if key is not None else "")
            + f" FROM {self._relation(stream, key)} AS t"
            for key in keys
        ]
        name = f"{stream.name}_{short_digest([self._origin(stream, k) + self._relation(stream, k) for k in keys])}"
        made = f"CREATE OR REPLACE TABLE `{self.conn.staging_table(name)}` AS\n" + "\nUNION ALL\n".join(selects)
        self._run(stream, keys[0], made)
        return f"SELECT * FROM {STAGING}.{name}"

    def fingerprints(
        self, stream: StreamSpec, partition_keys: Sequence[str] | None
    ) -> dict[str | None, list[dict[str, object]]]:
        """Each period's source as evidence: its name, row count and a hash of its rows' content (the sum of
        their fingerprints: independent of order, and a repeated row counts twice), in one query."""
        keys = period_keys(partition_keys)
        counted = "\nUNION ALL\n".join(
            f"SELECT {index} AS k, COUNT(*) AS n, "
            f"SUM(CAST(FARM_FINGERPRINT(TO_JSON_STRING(t)) AS BIGNUMERIC)) AS h FROM {self._relation(stream, key)} AS t"
            for index, key in enumerate(keys)
        )
        rows = {int(k): (int(n), h) for k, n, h in (row.values() for row in self._run(stream, keys[0], counted))}
        found: dict[str | None, list[dict[str, object]]] = {}
        for index, key in enumerate(keys):
            count, content = rows[index]
            digest = hashlib.sha256(f"{count}:{content}".encode()).hexdigest()
            found[key] = [{"path": self._origin(stream, key), "rows": count, "sha256": digest}]
        return found

    @staticmethod
    def extract_date(stream: StreamSpec) -> date:
        """A snapshot read from BigQuery is extracted when the run reads it: today (UTC)."""
        return datetime.now(UTC).date()

    def _table(self, stream: StreamSpec, key: str | None) -> str:
        assert stream.connector.table is not None
        name = stream.connector.table if key is None else stream.connector.table.replace(PERIOD_PLACEHOLDER, key)
        return name if name.count(".") >= 2 else f"{self.conn.project}.{name}"

    def _relation(self, stream: StreamSpec, key: str | None) -> str:
        """The source of one period as BigQuery reads it: a table, or the query in parentheses."""
        if stream.connector.table is not None:
            return f"`{self._table(stream, key)}`"
        query = str(stream.connector.query)
        if key is not None:
            period = self.calendar.period(key)
            for placeholder, value in (
                (PERIOD_PLACEHOLDER, key),
                ("{period_start}", period.start.isoformat()),
                ("{period_end}", period.end.isoformat()),
            ):
                query = query.replace(placeholder, value)
        return f"({query})"

    def _origin(self, stream: StreamSpec, key: str | None) -> str:
        """Where rows came from, as evidence and quarantine name it."""
        if stream.connector.table is not None:
            return f"bigquery:{self._table(stream, key)}"
        return f"bigquery:query:{stream.name}" + (f":{key}" if key is not None else "")

    def _run(self, stream: StreamSpec, key: str | None, sql: str) -> bigquery.table.RowIterator:
        try:
            return self.conn.run_as_written(sql)
        except WarehouseQueryError as exc:
            where = f"{stream.name} {key}" if key is not None else stream.name
            raise BadSourceFile(f"stream {where}: BigQuery cannot read the source: {exc}") from None


def _source_type(schema_field: bigquery.SchemaField) -> str:
    """A source column's type by its DuckDB name, or for a number of unknown size (a NUMERIC whose precision
    BigQuery does not report; an INT64, BigQuery's one integer type) the name drift checks take as such: not the
    widest type of its kind, which no contract's narrower column would take."""
    if schema_field.mode != "REPEATED" and schema_field.field_type in ("INTEGER", "INT64"):
        return UNSIZED_INTEGER
    unsized = schema_field.field_type in ("NUMERIC", "BIGNUMERIC") and schema_field.precision is None
    return UNSIZED_DECIMAL if unsized and schema_field.mode != "REPEATED" else duckdb_type(schema_field)

"""The warehouse on BigQuery: a connection with DuckDB's shape (`execute(sql, parameters)`, `fetchall`, `fetchone`),
so the services run the same SQL on both profiles. SQL in DuckDB's dialect is translated by `sql.bigquery`.

Every statement runs in one BigQuery session per connection: a multi-statement transaction (BEGIN ... COMMIT)
spans the jobs of a session, and temporary tables live in it. BigQuery runs no DDL on a dataset's tables inside a
transaction, so BEGIN takes effect at the first statement that changes rows: tables a write needs are made
before it, and one made after it is refused here, as BigQuery would (the emulator does not). Each job's bytes
processed and billed are added up on the connection, for the evidence and the run's metadata.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import GoogleAPICallError, NotFound
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import bigquery

from barecount.config.profiles import BigQueryTarget
from barecount.errors import UsageError, WarehouseQueryError
from barecount.sql.bigquery import NUMERIC_INTEGER_DIGITS, NUMERIC_SCALE, BigQueryStatement, to_bigquery
from barecount.sql.relation import Column
from barecount.warehouse.bigquery_emulator import emulator_python, shared_emulator

CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
"""Google's own variable naming a service account's key file; BareCount reads no credential from its files."""

if TYPE_CHECKING:
    import pyarrow

    from barecount.config.profiles import Settings

NUMERIC_LIMIT = Decimal("1e29")

DUCKDB_TYPES: Mapping[str, str] = {
    "INTEGER": "BIGINT",
    "INT64": "BIGINT",
    "FLOAT": "DOUBLE",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38,9)",
    "BIGNUMERIC": "DECIMAL(38,9)",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "STRING": "VARCHAR",
    "BYTES": "BLOB",
    "DATE": "DATE",
    "DATETIME": "TIMESTAMP",
    "TIMESTAMP": "TIMESTAMP WITH TIME ZONE",
    "TIME": "TIME",
    "JSON": "JSON",
}
"""BigQuery's types by the DuckDB names BareCount's SQL and columns use (a NUMERIC's own precision is not kept in
query results, so every NUMERIC reads as one type, on either side of a comparison)."""


RUN_DATE = "x_pipeline_run_date"
"""The DATE every table is partitioned by: a fiscal period's last day (the snapshot's extract date)."""
STAGING = "staging"
"""The layer of the tables source extracts are loaded into, before they are checked and split in SQL."""
STAGING_EXPIRY_MS = 24 * 3600 * 1000
"""A staged extract is read by the run that loaded it; BigQuery drops it a day later."""

BIGQUERY_TYPES: Mapping[str, str] = {
    "VARCHAR": "STRING",
    "BIGINT": "INT64",
    "INTEGER": "INT64",
    "SMALLINT": "INT64",
    "TINYINT": "INT64",
    "HUGEINT": "BIGNUMERIC",
    "DOUBLE": "FLOAT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "DATE": "DATE",
    "TIMESTAMP": "DATETIME",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    "TIME": "TIME",
    "BLOB": "BYTES",
}


def bigquery_field(name: str, kind: str, mode: str = "NULLABLE") -> bigquery.SchemaField:
    """A column of DuckDB type `kind` as a BigQuery schema field (a list as a REPEATED one). DECIMAL(p, s) is
    NUMERIC(p, s) where that fits; a wider one is a plain NUMERIC as long as its scale fits (DuckDB widens every
    SUM to 38 digits, and the values rarely need them: one beyond NUMERIC's 29 integer digits fails the load, it
    is never rounded), else BIGNUMERIC."""
    if kind.endswith("[]"):
        return bigquery.SchemaField(name, bigquery_field(name, kind[:-2]).field_type, "REPEATED")
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", kind)
    if decimal:
        precision, scale = int(decimal[1]), int(decimal[2])
        if scale > NUMERIC_SCALE:
            return bigquery.SchemaField(name, "BIGNUMERIC", mode)
        if precision - scale > NUMERIC_INTEGER_DIGITS:
            return bigquery.SchemaField(name, "NUMERIC", mode)
        return bigquery.SchemaField(name, "NUMERIC", mode, precision=precision, scale=scale)
    if kind not in BIGQUERY_TYPES:
        raise WarehouseQueryError(f"column {name}: DuckDB type {kind} has no BigQuery type here")
    return bigquery.SchemaField(name, BIGQUERY_TYPES[kind], mode)


def duckdb_type(schema_field: bigquery.SchemaField) -> str:
    """A BigQuery column's type by its DuckDB name: `STRUCT(...)` for records, `[]` for repeated fields."""
    if schema_field.field_type in ("RECORD", "STRUCT"):
        inner = ", ".join(f'"{f.name}" {duckdb_type(f)}' for f in schema_field.fields)
        base = f"STRUCT({inner})"
    elif schema_field.field_type in ("NUMERIC", "BIGNUMERIC") and schema_field.precision is not None:
        base = f"DECIMAL({schema_field.precision},{schema_field.scale or 0})"
    else:
        base = DUCKDB_TYPES[schema_field.field_type.split("(")[0]]
    return f"{base}[]" if schema_field.mode == "REPEATED" else base


def query_parameter(name: str, value: object) -> bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter:
    """A value bound as a named parameter of its BigQuery type (a list as an array of its first value's type)."""
    if isinstance(value, (list, tuple)):
        first = next((v for v in value if v is not None), None)
        return bigquery.ArrayQueryParameter(name, _scalar_type(first), list(value))
    return bigquery.ScalarQueryParameter(name, _scalar_type(value), value)


def _scalar_type(value: object) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, Decimal):
        return "NUMERIC" if abs(value) < NUMERIC_LIMIT and -value.as_tuple().exponent <= 9 else "BIGNUMERIC"  # type: ignore[operator]
    if isinstance(value, datetime):
        return "DATETIME" if value.tzinfo is None else "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    return "STRING"


@dataclass
class JobCosts:
    """What the jobs of a connection cost BigQuery."""

    queries: int = 0
    loads: int = 0
    bytes_processed: int = 0
    bytes_billed: int = 0

    @property
    def jobs(self) -> int:
        return self.queries + self.loads

    def since(self, before: JobCosts) -> JobCosts:
        """What the jobs after `before` (an earlier copy of these costs) cost."""
        return JobCosts(
            self.queries - before.queries,
            self.loads - before.loads,
            self.bytes_processed - before.bytes_processed,
            self.bytes_billed - before.bytes_billed,
        )

    def add(self, job: bigquery.QueryJob) -> None:
        self.queries += 1
        self.bytes_processed += job.total_bytes_processed or 0
        self.bytes_billed += job.total_bytes_billed or 0


@dataclass(eq=False)
class BigQueryConnection:
    """One BigQuery session, used like a DuckDB connection (compared and hashed by identity, as DuckDB's are)."""

    client: bigquery.Client
    dataset_prefix: str
    dialect = "bigquery"
    costs: JobCosts = field(default_factory=JobCosts)
    variables: dict[str, object] = field(default_factory=dict)
    _session_id: str | None = None
    _transaction: Literal["none", "asked", "open"] = "none"
    _rows: list[tuple[Any, ...]] = field(default_factory=list)
    _schema: list[bigquery.SchemaField] = field(default_factory=list)

    @property
    def project(self) -> str:
        return str(self.client.project)

    def dataset(self, layer: str) -> str:
        """The dataset that holds a layer (raw, gdp, evidence...)."""
        return f"{self.dataset_prefix}_{layer}"

    def execute(self, sql: str, parameters: Sequence[object] | None = None) -> BigQueryConnection:
        statement = to_bigquery(sql, self.project, self.dataset_prefix)
        values = list(parameters or [])
        self._rows, self._schema = [], []
        if statement.kind in ("begin", "commit", "rollback"):
            self._end_or_begin(statement)
            return self
        if statement.defines_table and self._transaction == "open":
            raise WarehouseQueryError(
                f"BigQuery changes no table's definition inside a transaction, and this one has changed rows: make "
                f"the table before the transaction writes ({statement.sql[:200]})"
            )
        if statement.changes_rows and self._transaction == "asked":
            self._run("BEGIN TRANSACTION", BigQueryStatement("begin"), [])
            self._transaction = "open"
        if statement.kind == "set_variable":
            (self.variables[statement.name],) = values
        elif statement.kind == "create_dataset":
            self.client.create_dataset(statement.name, exists_ok=True)
        elif statement.kind == "describe":
            schema = self._run(f"SELECT * FROM ({statement.sql}) LIMIT 0", statement, values).schema or []
            self._rows = [(f.name, duckdb_type(f), "YES", None, None, None) for f in schema]
        else:
            result = self._run(statement.sql, statement, values)
            self._schema = list(result.schema or [])
            self._rows = [tuple(row.values()) for row in result]
        return self

    def _end_or_begin(self, statement: BigQueryStatement) -> None:
        if statement.kind == "begin":
            if self._transaction != "none":
                raise WarehouseQueryError("a transaction is already open on this BigQuery session")
            self._transaction = "asked"
            return
        opened, self._transaction = self._transaction == "open", "none"
        if opened:
            self._run(statement.sql, statement, [])

    def _run(self, sql: str, statement: BigQueryStatement, values: list[object]) -> bigquery.table.RowIterator:
        bound = [query_parameter(name, value) for name, value in statement.bind(values, self.variables)]
        config = bigquery.QueryJobConfig(query_parameters=bound)
        if self._session_id is None:
            config.create_session = True
        else:
            config.connection_properties = [bigquery.ConnectionProperty("session_id", self._session_id)]
        with google_credentials():
            job = self.client.query(sql, job_config=config)
        try:
            result = job.result()
        except GoogleAPICallError as exc:
            raise WarehouseQueryError(str(exc)) from exc
        if self._session_id is None and job.session_info is not None:
            self._session_id = job.session_info.session_id
        self.costs.add(job)
        return result

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    @property
    def description(self) -> list[tuple[str, ...]]:
        return [(f.name, f.field_type) for f in self._schema]

    def cursor(self) -> BigQueryConnection:
        return self

    def close(self) -> None:
        self._session_id = None

    def stage(self, name: str, select_sql: str, scratch: duckdb.DuckDBPyConnection) -> str:
        """Load the rows of `select_sql`, run on a local DuckDB (`scratch`: it reads the source files), into the
        table `staging.<name>` with one load job, its schema given explicitly; returns the table for SQL."""
        columns = scratch.execute(f"DESCRIBE {select_sql}").fetchall()
        schema = [bigquery_field(str(column), str(kind)) for column, kind, *_ in columns]
        table = self.staging_table(name)
        with tempfile.TemporaryDirectory(prefix="barecount-staging-") as folder:
            extract = Path(folder) / f"{name}.parquet"
            scratch.execute(f"COPY ({select_sql}) TO '{extract}' (FORMAT parquet)")
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                schema=schema,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            )
            with extract.open("rb") as data:
                job = self.client.load_table_from_file(data, table, job_config=config)
                try:
                    job.result()
                except GoogleAPICallError as exc:
                    raise WarehouseQueryError(str(exc)) from exc
        self.costs.loads += 1
        return f"{STAGING}.{name}"

    def staging_table(self, name: str) -> str:
        """The full name of the staging table `name`, its dataset made if need be (its tables expire)."""
        staging = bigquery.Dataset(f"{self.project}.{self.dataset(STAGING)}")
        staging.default_table_expiration_ms = STAGING_EXPIRY_MS
        self.client.create_dataset(staging, exists_ok=True)
        return f"{staging.project}.{staging.dataset_id}.{name}"

    def to_arrow(self, sql: str) -> pyarrow.Table:
        """The rows of a SELECT (in DuckDB's SQL, translated) as Arrow: what a local file of them is written from."""
        statement = to_bigquery(sql, self.project, self.dataset_prefix)
        return self._run(statement.sql, statement, []).to_arrow(create_bqstorage_client=False)

    def run_as_written(self, sql: str) -> bigquery.table.RowIterator:
        """BigQuery SQL run as written, untranslated (a source's own query), in this session, its cost counted."""
        return self._run(sql, BigQueryStatement("query", sql), [])

    def create_table(self, layer: str, table: str, columns: Sequence[tuple[Column, bool]], by_period: bool) -> None:
        """Make `layer.table` with `columns` ((column, required) with DuckDB types), partitioned by day on its
        run date (one partition per fiscal period: a period's rows share its last day) and clustered by
        organisation, and by period when it has one: a partition's replacement and a period's reads touch that
        partition only."""
        fields = [bigquery_field(c.name, c.type, "REQUIRED" if required else "NULLABLE") for c, required in columns]
        made = bigquery.Table(f"{self.project}.{self.dataset(layer)}.{table}", schema=fields)
        made.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field=RUN_DATE)
        made.clustering_fields = ["x_org_slug", *(["fiscal_period"] if by_period else [])]
        try:
            self.client.create_table(made)
        except GoogleAPICallError as exc:
            raise WarehouseQueryError(str(exc)) from exc

    def tables(self, layers: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """(layer, table) of every table in the datasets of `layers` that exist (None: every layer's)."""
        if layers is None:
            prefix = self.dataset("")
            datasets = (d.dataset_id for d in self.client.list_datasets())
            layers = [d.removeprefix(prefix) for d in datasets if d.startswith(prefix)]
        found = []
        for layer in layers:
            try:
                found += [(layer, t.table_id) for t in self.client.list_tables(self.dataset(layer))]
            except NotFound:
                continue
        return sorted(found)

    def columns(self, layer: str, table: str) -> list[Column] | None:
        """A table's columns in order with their DuckDB type names, or None when it does not exist."""
        try:
            found = self.client.get_table(f"{self.project}.{self.dataset(layer)}.{table}")
        except NotFound:
            return None
        return [Column(f.name, duckdb_type(f)) for f in found.schema]


@contextmanager
def google_credentials() -> Iterator[None]:
    """Google's credentials missing or refused, as a usage error that says where they come from (never their
    content: the message is the library's, which names the file, not what is in it)."""
    try:
        yield
    except GoogleAuthError as exc:
        raise UsageError(
            f"Google Cloud credentials: {str(exc).splitlines()[0]} (set {CREDENTIALS_ENV} to a service account's "
            "key file, or sign in with `gcloud auth application-default login`)"
        ) from None


def bigquery_client(project: str, location: str | None, endpoint: str | None) -> bigquery.Client:
    """A client for `project`: at a local emulator's `endpoint` with anonymous credentials (it checks none), else
    with Google's default credentials (GOOGLE_APPLICATION_CREDENTIALS or the machine's), never from a file of
    the project."""
    if endpoint is None:
        with google_credentials():
            return bigquery.Client(project=project, location=location)
    return bigquery.Client(
        project=project,
        location=location,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoint),
    )


@dataclass(frozen=True)
class BigQueryDatasets:
    """A BigQuery profile's warehouse outside runs: a session per `get_connection`, ended with the block. For the
    emulator profile, the project's shared emulator (started on first use, see `shared_emulator`)."""

    target: BigQueryTarget
    emulator_dir: Path | None = None
    emulator_python: Path | None = None

    def endpoint(self) -> str | None:
        if not self.target.emulator:
            return None
        assert self.emulator_dir is not None and self.emulator_python is not None
        return shared_emulator(self.emulator_python, self.emulator_dir, self.target.project)

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[BigQueryConnection]:
        """A session; `read_only` is the caller's promise (BigQuery has no read-only session: the console
        checks what it runs before it runs it)."""
        client = bigquery_client(self.target.project, self.target.location, self.endpoint())
        with bigquery_connection(client, self.target.dataset_prefix) as conn:
            yield conn

    def exists(self) -> bool:
        """Whether the evidence dataset has tables (nothing was written before them)."""
        if self.emulator_dir is not None and not self.emulator_dir.exists():
            return False  # no emulator has kept a table yet: none is started to say so
        with self.get_connection(read_only=True) as conn:
            return bool(conn.tables(["evidence"]))


def bigquery_datasets(settings: Settings) -> BigQueryDatasets:
    """The profile's BigQuery warehouse for use outside runs."""
    target = settings.bigquery
    if not target.emulator:
        return BigQueryDatasets(target)
    return BigQueryDatasets(target, settings.emulator_dir, emulator_python(settings.paths.root))


@contextmanager
def bigquery_connection(client: bigquery.Client, dataset_prefix: str) -> Iterator[BigQueryConnection]:
    """A connection for the length of a block; its session ends with it."""
    conn = BigQueryConnection(client, dataset_prefix)
    try:
        yield conn
    finally:
        conn.close()

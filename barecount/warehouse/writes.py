"""Replace a table's partitions in one transaction, stamping lineage in SQL.

The replace key is (x_org_slug, x_pipeline_id, x_credential_id, x_pipeline_run_date): one period of
one source for one organisation. Delete and insert share a transaction, so a failure at any point
leaves the previous rows of every partition as they were.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import duckdb
from sqlglot import exp

from barecount.errors import RefusedError, WarehouseQueryError
from barecount.sql.binding import DIALECT
from barecount.sql.relation import (
    BATCH_TABLE,
    LINEAGE_COLUMNS,
    PARTITION_COLUMN,
    Column,
    SqlRelation,
    lineage_type,
    quote_ident,
    schema_hash,
    sql_literal,
)
from barecount.sql.widening import widens
from barecount.warehouse.catalog import table_columns
from barecount.warehouse.connection import Connection, on_bigquery

OUTSIDE_THE_WRITE = "barecount: a row of a period outside the write"
"""The error a write's insert raises, in the warehouse, at a row of a period it does not write."""


@dataclass(frozen=True)
class WriteResult:
    """What a write did, measured in the warehouse."""

    table: str
    columns: tuple[Column, ...]
    schema_hash: str
    rows_by_partition: Mapping[str, int]
    rows: int
    sql: str
    content: Mapping[str | None, str]
    """A fingerprint of each partition's rows as written (None: the whole unpartitioned table)."""
    replaced: Mapping[str | None, tuple[int, str]]
    """Rows and fingerprint of what each partition held before, for those that held rows."""

    def restated(self) -> dict[str | None, tuple[int, int]]:
        """Partitions that held rows and now hold different ones: (rows before, rows after)."""
        after = dict(self.rows_by_partition) if self.rows_by_partition else {None: self.rows}
        return {
            key: (rows, after.get(key, 0))
            for key, (rows, fingerprint) in self.replaced.items()
            if self.content.get(key) != fingerprint
        }


def content_sql(
    table: str, business: Sequence[Column], where: str, partitioned: bool, unfingerprinted: Sequence[str] = ()
) -> str:
    """Rows and content fingerprint of each partition of `table` (NULL: the unpartitioned table) among the rows
    `where` selects: an order-free sum of the row hashes of the business columns, so any UPDATE, DELETE or
    INSERT changes it. The fingerprint a write records is the one `ledger verify --data` and the next run
    compare; `unfingerprinted` columns (a publication time) change on every write and are left out."""
    partition = PARTITION_COLUMN if partitioned else "NULL"
    hashed = ", ".join(quote_ident(c.name) for c in business if c.name not in unfingerprinted)
    return f"SELECT {partition}, count(*), sum(hash({hashed}))::VARCHAR FROM {table} WHERE {where} GROUP BY ALL"


def source_filter(org_slug: str, pipeline_id: str, credential_id: str) -> str:
    """The rows one source wrote for one organisation: the replace key without its run dates."""
    return (
        f"x_org_slug = {sql_literal(org_slug)} AND x_pipeline_id = {sql_literal(pipeline_id)} "
        f"AND x_credential_id = {sql_literal(credential_id)}"
    )


def business_columns(conn: Connection, schema: str, table: str) -> list[Column] | None:
    """A table's columns other than the stamped lineage, or None when it does not exist."""
    columns = table_columns(conn, schema, table)
    return None if columns is None else [c for c in columns if c.name not in LINEAGE_COLUMNS]


def _describe(conn: Connection, select_sql: str) -> list[Column]:
    rows = conn.execute(f"DESCRIBE {select_sql}").fetchall()
    return [Column(str(r[0]), str(r[1])) for r in rows]


def insert_rows(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Insert Python rows as one statement that unnests one list per column: a VALUES list binds a parameter
    per value (12 ms for 81 ledger entries) and `executemany` runs one statement per row (95 ms); this takes
    2 ms. The target table's column types cast each list's values."""
    if not rows:
        return
    if on_bigquery(conn):  # BigQuery cannot unnest lists side by side; evidence rows are few
        values = ", ".join("(" + ", ".join(exp.convert(v).sql(DIALECT) for v in row) + ")" for row in rows)
        conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}")
        return
    unnested = ", ".join(f"unnest(${i})" for i in range(1, len(columns) + 1))
    conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {unnested}",
        [list(column) for column in zip(*rows, strict=True)],
    )


def _create_table(conn: Connection, schema: str, table: str, business: Sequence[Column]) -> None:
    # lineage is never null, nor is a relation's own x_ column (x_contract_version)
    columns = [(c, c.name.startswith("x_")) for c in business] + [
        (Column(c, lineage_type(c)), True) for c in LINEAGE_COLUMNS
    ]
    if on_bigquery(conn):
        conn.create_table(schema, table, columns, PARTITION_COLUMN in {c.name for c in business})
        return
    listed = [f"{quote_ident(c.name)} {c.type}{' NOT NULL' if required else ''}" for c, required in columns]
    conn.execute(f"CREATE TABLE {quote_ident(schema)}.{quote_ident(table)} ({', '.join(listed)})")


@contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    """One transaction: committed if the block finishes, rolled back on any error or interrupt."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class Target:
    """Where a write goes and the lineage it stamps (everything but the SELECT)."""

    schema: str
    table: str
    org_slug: str
    run_id: str
    run_dates: Mapping[str, date] | None
    pipeline_id: str
    credential_id: str
    data_date: date | None
    unfingerprinted: tuple[str, ...] = ()
    """Columns that change on every write (a publication time) and so say nothing about the content."""

    @classmethod
    def of(
        cls,
        schema: str,
        table: str,
        org_slug: str,
        run_id: str,
        run_dates: Mapping[str, date] | None,
        relation: SqlRelation,
    ) -> Target:
        """The target of writing `relation` into `schema.table`."""
        return cls(
            schema,
            table,
            org_slug,
            run_id,
            run_dates,
            relation.pipeline_id,
            relation.credential_id,
            relation.data_date,
            relation.unfingerprinted,
        )


def replace_partitions(
    conn: Connection,
    schema: str,
    table: str,
    relation: SqlRelation,
    *,
    org_slug: str,
    run_id: str,
    run_dates: Mapping[str, date] | None,
) -> WriteResult:
    """Write `relation` as the partitions in `run_dates` (period key -> data date) of `schema.table`.

    `run_dates=None` replaces the whole snapshot of this source (unpartitioned tables).
    """
    target = Target.of(schema, table, org_slug, run_id, run_dates, relation)
    with transaction(conn):
        return replace_within(conn, target, relation.sql)


@dataclass(frozen=True)
class SplitResult:
    """A checked extract's write: rows in, rows landed in raw, rows quarantined, per partition."""

    landed: WriteResult
    quarantined: WriteResult
    rows_in_by_partition: Mapping[str, int]
    rules_by_partition: Mapping[str | None, Mapping[str, int]]
    """Quarantined rows per rule, by partition (None for an unpartitioned table)."""

    @property
    def rules(self) -> dict[str, int]:
        """Quarantined rows per rule over the whole write."""
        total: dict[str, int] = {}
        for counts in self.rules_by_partition.values():
            for rule, n in counts.items():
                total[rule] = total.get(rule, 0) + n
        return dict(sorted(total.items()))


def replace_with_quarantine(conn: Connection, target: Target, relation: SqlRelation) -> SplitResult:
    """Land the good rows in `target` and the others in `quarantine.<table>`, in one transaction."""
    with transaction(conn):
        return split_within(conn, target, relation)


def split_within(conn: Connection, target: Target, relation: SqlRelation) -> SplitResult:
    """The quarantine split of one write, inside the caller's transaction."""
    assert relation.quarantine is not None
    partition = PARTITION_COLUMN if target.run_dates is not None else "NULL"
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {BATCH_TABLE} AS {relation.sql}")
    # both tables are made before either is written: BigQuery makes no table once a transaction changed rows
    landing = prepare_write(conn, target, relation.quarantine.landed_sql)
    quarantining = prepare_write(conn, replace(target, schema="quarantine"), relation.quarantine.quarantined_sql)
    landed, quarantined = write_prepared(conn, landing), write_prepared(conn, quarantining)
    rows_in = conn.execute(f"SELECT {partition}, count(*) FROM {BATCH_TABLE} GROUP BY ALL").fetchall()
    rules = conn.execute(
        f"SELECT {partition}, quarantine_rule, count(*) FROM ({relation.quarantine.quarantined_sql}) "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    conn.execute(f"DROP TABLE {BATCH_TABLE}")
    counted = {str(k): int(n) for k, n in rows_in if k is not None}
    by_partition = {k: counted.get(k, 0) for k in target.run_dates} if target.run_dates is not None else {}
    rules_by_partition: dict[str | None, dict[str, int]] = {}
    for key, rule, count in rules:
        rules_by_partition.setdefault(None if key is None else str(key), {})[str(rule)] = int(count)
    return SplitResult(landed, quarantined, by_partition, rules_by_partition)


def replace_within(conn: Connection, t: Target, select_sql: str) -> WriteResult:
    """The delete and insert of one write, inside the caller's transaction."""
    return write_prepared(conn, prepare_write(conn, t, select_sql))


@dataclass(frozen=True)
class PreparedWrite:
    """A write whose table is ready for its rows."""

    target: Target
    table: str
    """The table, quoted."""
    select_sql: str
    business: list[Column]
    replace_key: str
    """The rows the write replaces."""
    made: bool = False
    """The table was made for this write: it holds no rows to measure or delete (two jobs fewer on BigQuery)."""


def prepare_write(conn: Connection, t: Target, select_sql: str) -> PreparedWrite:
    """Make (or reshape) the table a write needs, before any of its rows change."""
    target = f"{quote_ident(t.schema)}.{quote_ident(t.table)}"
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(t.schema)}")
    # inputs' stamped lineage is replaced; a relation's own x_ columns (e.g. x_contract_version) are kept
    business = [c for c in _describe(conn, f"SELECT * FROM ({select_sql}) AS rel") if c.name not in LINEAGE_COLUMNS]
    if t.run_dates is not None and PARTITION_COLUMN not in {c.name for c in business}:
        raise RefusedError(f"{t.schema}.{t.table}: a partitioned relation must return a '{PARTITION_COLUMN}' column")
    replace_key = source_filter(t.org_slug, t.pipeline_id, t.credential_id)
    if t.run_dates is not None:
        dates = ", ".join(sql_literal(d) for d in sorted(set(t.run_dates.values())))
        replace_key += f" AND x_pipeline_run_date IN ({dates})"
    made = _ensure_table(conn, t.schema, t.table, target, business, replace_key, t.run_dates)
    return PreparedWrite(t, target, select_sql, business, replace_key, made)


def write_prepared(conn: Connection, w: PreparedWrite) -> WriteResult:
    """Replace the rows of a prepared write: measure what they were, delete them, insert the new ones."""
    t, target, business = w.target, w.table, w.business
    now = datetime.now(UTC).replace(tzinfo=None)
    source = f"({w.select_sql})"
    measured = content_sql(target, business, w.replace_key, t.run_dates is not None, t.unfingerprinted)
    replaced: dict[str | None, tuple[int, str]] = {}
    if not w.made:
        found = conn.execute(measured).fetchall()
        replaced = {None if k is None else str(k): (int(n), str(f)) for k, n, f in found if n}
        conn.execute(f"DELETE FROM {target} WHERE {w.replace_key}")

    if t.run_dates is not None:
        periods = ", ".join(f"({sql_literal(k)}, {sql_literal(d)})" for k, d in t.run_dates.items())
        # a row of a period outside the write stops the insert, on either engine (both evaluate COALESCE lazily)
        run_date_sql = f"coalesce(p.run_date, CAST(error({sql_literal(OUTSIDE_THE_WRITE)}) AS DATE))"
        join = (
            f"LEFT JOIN (VALUES {periods}) AS p(period_key, run_date) "
            f"ON rel.{quote_ident(PARTITION_COLUMN)} = p.period_key"
        )
    else:
        run_date_sql, join = sql_literal(t.data_date or now.date()), ""
    lineage_values = [
        sql_literal(t.org_slug),
        sql_literal(t.pipeline_id),
        sql_literal(t.credential_id),
        run_date_sql,
        sql_literal(t.run_id),
        f"TIMESTAMP '{now.isoformat(sep=' ')}'",
        sql_literal(now.date()),
    ]
    names = [quote_ident(c.name) for c in business] + list(LINEAGE_COLUMNS)
    values = [f"rel.{quote_ident(c.name)}" for c in business] + lineage_values
    insert_sql = f"INSERT INTO {target} ({', '.join(names)})\nSELECT {', '.join(values)}\nFROM {source} AS rel {join}"
    try:
        conn.execute(insert_sql)
    except (duckdb.Error, WarehouseQueryError) as exc:
        if OUTSIDE_THE_WRITE in str(exc):
            raise RefusedError(
                f"{t.schema}.{t.table}: the relation returned rows for periods outside the ones being "
                f"written ({', '.join(sorted(t.run_dates or {}))}); nothing was written"
            ) from None
        raise
    counted = conn.execute(measured).fetchall()
    rows_by_partition = {str(k): int(n) for k, n, _ in counted if k is not None}
    if t.run_dates is not None:
        rows_by_partition = {k: rows_by_partition.get(k, 0) for k in t.run_dates}
    return WriteResult(
        table=f"{t.schema}.{t.table}",
        columns=tuple(business),
        schema_hash=schema_hash(business),
        rows_by_partition=rows_by_partition,
        rows=sum(int(n) for _, n, _ in counted),
        sql=w.select_sql,
        content={None if k is None else str(k): str(f) for k, _, f in counted},
        replaced=replaced,
    )


def _ensure_table(
    conn: Connection,
    schema: str,
    table: str,
    target: str,
    business: Sequence[Column],
    replace_key: str,
    run_dates: Mapping[str, date] | None,
) -> bool:
    """Create the table, or re-create it when its columns changed and this write replaces all its rows; whether
    it was (re-)made empty."""
    existing = table_columns(conn, schema, table)
    if existing is None:
        _create_table(conn, schema, table, business)
        return True
    kept = [c for c in existing if c.name not in LINEAGE_COLUMNS]
    if kept == list(business):
        return False
    if [c.name for c in kept] == [c.name for c in business] and all(
        widens(old.type, new.type) for old, new in zip(kept, business, strict=True)
    ):
        # an approved contract version widened a type: the rows of other periods fit the wider column as they are
        for old, new in zip(kept, business, strict=True):
            if old.type != new.type:
                conn.execute(f"ALTER TABLE {target} ALTER COLUMN {quote_ident(new.name)} SET DATA TYPE {new.type}")
        return False
    remaining = conn.execute(f"SELECT count(*) FROM {target} WHERE NOT ({replace_key})").fetchone()
    if remaining and remaining[0]:
        before = {c.name: c.type for c in existing if c.name not in LINEAGE_COLUMNS}
        after = {c.name: c.type for c in business}
        change = ", ".join(
            [f"+{n}" for n in after if n not in before]
            + [f"-{n}" for n in before if n not in after]
            + [f"{n}: {before[n]} -> {after[n]}" for n in after if n in before and before[n] != after[n]]
        )
        raise RefusedError(
            f"{schema}.{table}: its columns changed ({change or 'order'}) and {remaining[0]} rows of other "
            "periods would keep the old shape; rebuild every period of it in one run"
        )
    conn.execute(f"DROP TABLE {target}")
    _create_table(conn, schema, table, business)
    return True

"""Sample-data scenarios, each one on the record in the manifest.

- Bad rows: invalid rows injected into the ERP and CRM extracts. Every injected row is listed with the
  stream, the contract rule it breaks and its key as text, so a test can check that quarantine holds
  exactly these rows. Line items whose order was made invalid are not listed: they are quarantined as
  `orphan_of_quarantined_parent`, counted apart.
- Late data: a fraction of the last periods' orders (and their lines) arrive in the next period's extract.
- Anomaly: one period's line prices inflated, which a KPI threshold should catch.
- Drift: the most recent orders extract renames a column and widens another's type, as a source system
  does when it changes shape from one delivery on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from barecount.errors import UsageError

BAD_ROW_KINDS: tuple[tuple[str, str], ...] = (
    ("orders", "required__o_orderkey"),
    ("orders", "duplicate_key"),
    ("orders", "valid_values__o_orderstatus"),
    ("lineitem", "range__l_quantity"),
    ("lineitem", "references__l_orderkey"),
    ("crm_customers", "type__updated_at"),
    ("crm_customers", "type__customer_id"),
)
"""(stream, rule) of each kind of invalid row, dealt out in turn."""


class InjectedRow(BaseModel):
    """One invalid row the generator put into an extract on purpose."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    stream: str = Field(description="Stream whose extract holds the row.")
    rule: str = Field(description="Contract rule the row breaks.")
    key: str | None = Field(description="The row's key as delivered (text), null if the key itself is missing.")
    period: str | None = Field(description="Extract (fiscal period) holding the row; null for snapshots.")


LATE_PERIODS = 3
"""How many of the most recent periods lose some orders to the next period's extract."""

DRIFT_RENAMED = {"o_orderpriority": "o_order_priority"}
DRIFT_RETYPED = {"o_totalprice": "DECIMAL(18,2)"}


class LateRows(BaseModel):
    """Orders of one period delivered in a later period's extract."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    order_period: str = Field(description="Period of the orders' dates.")
    extract_period: str = Field(description="Period of the extract they arrived in.")
    orders: int = Field(description="Orders moved (their line items moved with them).")


class DriftScenario(BaseModel):
    """How one extract changed shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    stream: str = Field(description="Stream whose extract changed.")
    period: str = Field(description="The extract (fiscal period) that changed.")
    renamed: dict[str, str] = Field(description="Source column -> its new name.")
    retyped: dict[str, str] = Field(description="Source column -> its new type.")


ANOMALY_FACTOR = 3


class PriceAnomaly(BaseModel):
    """One period whose line prices were inflated, as a broken price list would."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    period: str = Field(description="The period whose line items' extended prices were multiplied.")
    factor: float = Field(description="The factor applied.")
    lines: int = Field(description="Line items changed.")


def anomalous_periods(periods: Sequence[str], wanted: int | Sequence[str], seed: int) -> list[str]:
    """The periods whose prices a sample inflates: those named, or `wanted` of them picked by the seed.

    Picked periods lie in the sample's second half (a KPI's anomaly score needs years of history before it),
    not its last two (a partial period is not scored), and never side by side, so each stands alone.
    """
    if not isinstance(wanted, int):
        unknown = [p for p in wanted if p not in periods]
        if unknown:
            raise UsageError(
                f"--anomaly: {', '.join(unknown)} has no orders in the sample ({periods[0]} .. {periods[-1]})"
            )
        return sorted(set(wanted), key=periods.index)
    candidates = sorted(
        periods[len(periods) // 2 : -2], key=lambda p: hashlib.md5(f"{seed}:anomaly:{p}".encode()).hexdigest()
    )
    picked: list[str] = []
    for period in candidates:
        if len(picked) == wanted:
            break
        if all(abs(periods.index(period) - periods.index(p)) > 1 for p in picked):
            picked.append(period)
    if len(picked) < wanted:
        raise UsageError(f"--anomaly: the sample has room for {len(picked)} anomalous periods, not {wanted}")
    return sorted(picked, key=periods.index)


def inflate_prices(conn: duckdb.DuckDBPyConnection, period: str) -> PriceAnomaly:
    """Multiply the extended price of every line item of `period` (table `lineitem_src`)."""
    changed = conn.execute(
        f"UPDATE lineitem_src SET l_extendedprice = l_extendedprice * {ANOMALY_FACTOR} WHERE period_key = ?",
        [period],
    ).fetchone()
    return PriceAnomaly(period=period, factor=ANOMALY_FACTOR, lines=int(changed[0]) if changed else 0)


class SampleScenarios(BaseModel):
    """Which scenarios a sample was made with."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    bad_rows: int = Field(default=0, ge=0, description="Invalid rows injected (listed in the manifest's `injected`).")
    late_fraction: float = Field(default=0.0, ge=0, le=1, description="Share of the last periods' orders held back.")
    late: list[LateRows] = Field(default=[], description="Orders delivered late, by period.")
    drift: DriftScenario | None = Field(default=None, description="The extract that changed shape, if any.")
    anomalies: list[PriceAnomaly] = Field(default=[], description="The periods with inflated prices.")

    @property
    def any(self) -> bool:
        return self != SampleScenarios()


def hold_back_late_orders(
    conn: duckdb.DuckDBPyConnection, fraction: float, seed: int, next_period: dict[str, str]
) -> list[LateRows]:
    """Move `fraction` of each of the last periods' orders (`orders_src.period_key`) to the next period.

    `next_period` maps each of those periods to the one after it. Picked by md5(seed, key).
    """
    moved = []
    for period, later in next_period.items():
        picked = conn.execute(
            "UPDATE orders_src SET period_key = ? WHERE period_key = ? AND o_orderkey IN (SELECT o_orderkey FROM "
            f"(SELECT o_orderkey, row_number() OVER (ORDER BY md5('{seed}:late:' || o_orderkey)) AS n, "
            "count(*) OVER () AS total FROM orders_src WHERE period_key = ?) WHERE n <= round(total * ?))",
            [later, period, period, fraction],
        ).fetchone()
        moved.append(LateRows(order_period=period, extract_period=later, orders=int(picked[0]) if picked else 0))
    return moved


def change_shape(conn: duckdb.DuckDBPyConnection, file: str, stream: str, period: str) -> DriftScenario:
    """Rewrite one orders extract with a renamed and a wider column (same rows, same order)."""
    rename = ", ".join(f"{old} AS {new}" for old, new in DRIFT_RENAMED.items())
    retype = ", ".join(f"CAST({column} AS {kind}) AS {column}" for column, kind in DRIFT_RETYPED.items())
    changed = file + ".drifted"
    conn.execute(
        f"COPY (SELECT * REPLACE ({retype}) RENAME ({rename}) FROM read_parquet('{file}')) TO '{changed}' "
        "(FORMAT parquet)"
    )
    os.replace(changed, file)
    return DriftScenario(stream=stream, period=period, renamed=DRIFT_RENAMED, retyped=DRIFT_RETYPED)


def _share(total: int) -> list[int]:
    kinds = len(BAD_ROW_KINDS)
    return [total // kinds + (1 if i < total % kinds else 0) for i in range(kinds)]


def _rank(table: str, key: str, seed: int, where: str = "true") -> str:
    return f"SELECT * FROM {table} WHERE {where} ORDER BY md5('{seed}:bad:' || {key})"


def inject_bad_rows(conn: duckdb.DuckDBPyConnection, total: int, seed: int) -> list[InjectedRow]:
    """Change tables `orders_src`, `lineitem_src` and `crm_src` in place; return what was injected.

    Rows are picked by md5(seed, key), so the same seed injects into the same rows.
    """
    counts = dict(zip(BAD_ROW_KINDS, _share(total), strict=True))
    null_keys, duplicates, bad_status = (
        counts[("orders", r)] for r in ("required__o_orderkey", "duplicate_key", "valid_values__o_orderstatus")
    )
    conn.execute(
        f"CREATE TEMP TABLE picked_orders AS SELECT o_orderkey, row_number() OVER () AS n FROM "
        f"({_rank('orders_src', 'o_orderkey', seed)} LIMIT {null_keys + duplicates + bad_status})"
    )
    # extra copies of existing orders: one with its key blanked, one repeating it (the later copy is the duplicate)
    conn.execute(
        "INSERT INTO orders_src SELECT o.* REPLACE (CASE WHEN p.n <= ? THEN NULL ELSE o.o_orderkey END AS o_orderkey, "
        "1 AS __injected) FROM orders_src o JOIN picked_orders p USING (o_orderkey) WHERE p.n <= ?",
        [null_keys, null_keys + duplicates],
    )
    conn.execute(
        "UPDATE orders_src SET o_orderstatus = 'Z' WHERE __injected = 0 AND o_orderkey IN "
        "(SELECT o_orderkey FROM picked_orders WHERE n > ?)",
        [null_keys + duplicates],
    )
    negative, orphans = counts[("lineitem", "range__l_quantity")], counts[("lineitem", "references__l_orderkey")]
    # lines of orders left alone, so each injected line breaks exactly its own rule
    lines = _rank(
        "lineitem_src",
        "l_orderkey || ':' || l_linenumber",
        seed,
        "l_orderkey NOT IN (SELECT o_orderkey FROM picked_orders)",
    )
    conn.execute(
        "CREATE TEMP TABLE picked_lines AS SELECT l_orderkey, l_linenumber, row_number() OVER () AS n FROM "
        f"({lines} LIMIT {negative + orphans})"
    )
    conn.execute(
        "UPDATE lineitem_src SET l_quantity = -1 WHERE (l_orderkey, l_linenumber) IN "
        "(SELECT (l_orderkey, l_linenumber) FROM picked_lines WHERE n <= ?)",
        [negative],
    )
    # copies of lines pointing at orders that do not exist
    conn.execute(
        "INSERT INTO lineitem_src SELECT l.* REPLACE ((SELECT max(o_orderkey) FROM orders_src) + p.n AS l_orderkey, "
        "1 AS __injected) FROM lineitem_src l JOIN picked_lines p USING (l_orderkey, l_linenumber) WHERE p.n > ?",
        [negative],
    )
    bad_dates, bad_ids = counts[("crm_customers", "type__updated_at")], counts[("crm_customers", "type__customer_id")]
    conn.execute(
        f"CREATE TEMP TABLE picked_crm AS SELECT customer_id, row_number() OVER () AS n FROM "
        f"({_rank('crm_src', 'customer_id', seed)} LIMIT {bad_dates + bad_ids})"
    )
    conn.execute(
        "UPDATE crm_src SET updated_at = 'not a date' WHERE customer_id IN (SELECT customer_id FROM picked_crm "
        "WHERE n <= ?)",
        [bad_dates],
    )
    conn.execute(
        "UPDATE crm_src SET customer_id = 'C-' || customer_id WHERE customer_id IN (SELECT customer_id FROM "
        "picked_crm WHERE n > ?)",
        [bad_dates],
    )
    return _record(conn)


def _record(conn: duckdb.DuckDBPyConnection) -> list[InjectedRow]:
    queries = [
        ("orders", "required__o_orderkey", "SELECT NULL, period_key FROM orders_src WHERE o_orderkey IS NULL"),
        (
            "orders",
            "duplicate_key",
            "SELECT o_orderkey, period_key FROM orders_src WHERE __injected = 1 AND o_orderkey IS NOT NULL",
        ),
        (
            "orders",
            "valid_values__o_orderstatus",
            "SELECT o_orderkey, period_key FROM orders_src WHERE o_orderstatus = 'Z'",
        ),
        (
            "lineitem",
            "range__l_quantity",
            "SELECT l_orderkey || ', ' || l_linenumber, period_key FROM lineitem_src WHERE l_quantity < 0",
        ),
        (
            "lineitem",
            "references__l_orderkey",
            "SELECT l_orderkey || ', ' || l_linenumber, period_key FROM lineitem_src WHERE __injected = 1",
        ),
        ("crm_customers", "type__updated_at", "SELECT customer_id, NULL FROM crm_src WHERE updated_at = 'not a date'"),
        ("crm_customers", "type__customer_id", "SELECT customer_id, NULL FROM crm_src WHERE customer_id LIKE 'C-%'"),
    ]
    injected = []
    for stream, rule, sql in queries:
        for key, period in conn.execute(f"{sql} ORDER BY ALL").fetchall():
            injected.append(InjectedRow(stream=stream, rule=rule, key=None if key is None else str(key), period=period))
    return injected

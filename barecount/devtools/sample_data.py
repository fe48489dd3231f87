"""Sample source systems from TPC-H: ERP extracts per fiscal period, reference snapshots, a CRM extract.

`tpchgen-cli` writes the eight TPC-H tables; DuckDB SQL (never pandas: SF1 has 6 M line items) then
lays them out as the sources deliver them. Everything is built beside the target and swapped in at
the end, so a failure leaves the previous sample as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from barecount.calendar import FiscalCalendar
from barecount.devtools.scenarios import (
    LATE_PERIODS,
    InjectedRow,
    SampleScenarios,
    anomalous_periods,
    change_shape,
    hold_back_late_orders,
    inflate_prices,
    inject_bad_rows,
)
from barecount.errors import BareCountError
from barecount.sql.relation import sql_literal

FACT_TABLES = ("orders", "lineitem")
REFERENCE_TABLES = ("customer", "nation", "region", "part", "supplier", "partsupp")
MANIFEST = "manifest.json"
LAYOUT = ("erp", "crm", MANIFEST)

Progress = Callable[[str], None]


class SampleFile(BaseModel):
    """One file of the sample."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str = Field(description="Path relative to the sample folder (POSIX).")
    table: str = Field(description="Source table the file holds.")
    period: str | None = Field(description="Fiscal period of a per-period extract; null for snapshots.")
    rows: int = Field(description="Rows in the file.")


class SampleManifest(BaseModel):
    """`manifest.json`: what `barecount sample-data` made (deterministic: no timestamps)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    generator: str = Field(description="The generator and its version.")
    scale: float = Field(description="TPC-H scale factor.")
    seed: int = Field(description="Seed of the CRM extract and scenarios.")
    scenarios: SampleScenarios = Field(default=SampleScenarios(), description="Scenarios: bad rows, late data, drift.")
    calendar: str = Field(description="Fiscal calendar the extracts are split by.")
    first_period: str = Field(description="First period with an extract.")
    last_period: str = Field(description="Last period with an extract.")
    files: list[SampleFile] = Field(description="Every file, in path order.")
    totals: dict[str, int] = Field(description="Rows per table.")
    injected: list[InjectedRow] = Field(default=[], description="Every invalid row injected on purpose.")

    def periods(self) -> list[str]:
        """The periods with an extract, in order (period keys sort as the calendar does)."""
        return sorted({f.period for f in self.files if f.period})


def _tpchgen() -> str:
    beside = Path(sys.executable).with_name("tpchgen-cli")
    found = str(beside) if beside.is_file() else shutil.which("tpchgen-cli")
    if not found:
        raise BareCountError("tpchgen-cli is not installed (it comes with BareCount's dependencies: run `make demo`)")
    return found


def _generate_tpch(target: Path, scale: float) -> str:
    command = [_tpchgen(), "parquet", "-s", f"{scale:g}", "--output-dir", str(target)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-800:]
        raise BareCountError(f"{' '.join(command)} failed (exit {done.returncode}): {tail}")
    version = subprocess.run([command[0], "--version"], capture_output=True, text=True).stdout.strip()
    return version or "tpchgen-cli"


def _hash(expression: str, salt: str, seed: int) -> str:
    """A deterministic 32-bit number from md5 of seed, salt and a key."""
    return f"('0x' || substr(md5('{seed}:{salt}:' || {expression}), 1, 8))::UBIGINT::BIGINT"


def _split_by_period(conn: duckdb.DuckDBPyConnection, select: str, stage: Path, target: Path) -> None:
    """Write one parquet file per period_key of `select` as `target/<period>.parquet`."""
    stage.parent.mkdir(parents=True, exist_ok=True)
    conn.execute(
        f"COPY ({select}) TO {sql_literal(str(stage))} (FORMAT parquet, PARTITION_BY (period_key), "
        "WRITE_PARTITION_COLUMNS false)"
    )
    target.mkdir(parents=True, exist_ok=True)
    for folder in sorted(stage.iterdir()):
        key = folder.name.split("=", 1)[1]
        parts = sorted(folder.glob("*.parquet"))
        if len(parts) == 1:
            parts[0].rename(target / f"{key}.parquet")
        else:
            listed = "[" + ", ".join(sql_literal(str(p)) for p in parts) + "]"
            conn.execute(
                f"COPY (SELECT * FROM read_parquet({listed})) TO {sql_literal(str(target / key))}.parquet"
                " (FORMAT parquet)"
            )


def _crm_table(conn: duckdb.DuckDBPyConnection, customer: Path, seed: int) -> None:
    """Table `crm_src`: about a fifth of the customers, half with newer, conflicting values, some null (as text)."""
    pick, conflict, blank, when = (_hash("c_custkey", s, seed) for s in ("pick", "conflict", "blank", "when"))
    conn.execute(
        f"""
        CREATE TABLE crm_src AS
            SELECT
                CAST(c_custkey AS VARCHAR) AS customer_id,
                c_name AS name,
                CASE WHEN {blank} % 7 = 0 THEN NULL
                     WHEN {conflict} % 2 = 0 THEN lpad(CAST(10 + {conflict} % 25 AS VARCHAR), 2, '0') || '-'
                        || substr(CAST({conflict} AS VARCHAR), 1, 3) || '-' || substr(CAST({pick} AS VARCHAR), 1, 3)
                        || '-' || lpad(CAST({when} % 10000 AS VARCHAR), 4, '0')
                     ELSE c_phone END AS phone,
                CASE WHEN {blank} % 11 = 0 THEN NULL
                     WHEN {conflict} % 2 = 0 THEN
                        ['AUTOMOBILE', 'BUILDING', 'FURNITURE', 'HOUSEHOLD', 'MACHINERY'][1 + {conflict} % 5]
                     ELSE c_mktsegment END AS segment,
                CASE WHEN {conflict} % 2 = 0 THEN 'CRM ' || substr(md5('{seed}:address:' || c_custkey), 1, 16)
                     ELSE c_address END AS address,
                c_nationkey AS nation_key,
                CAST(TIMESTAMP '1998-01-01' + to_seconds(CAST({when} % 63072000 AS BIGINT)) AS VARCHAR) AS updated_at
            FROM read_parquet({sql_literal(str(customer))})
            WHERE {pick} % 5 = 0
        """
    )


def _swap_in(built: Path, out_dir: Path) -> None:
    """Replace the sample's own files in `out_dir` by the built ones; leave anything else there alone."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trash = out_dir / f".old-{os.getpid()}"
    trash.mkdir()
    for name in LAYOUT:
        if (out_dir / name).exists():
            (out_dir / name).rename(trash / name)
    for name in LAYOUT:
        (built / name).rename(out_dir / name)
    shutil.rmtree(trash)


def generate_sample_data(
    out_dir: Path,
    scale: float,
    seed: int,
    calendar: FiscalCalendar,
    progress: Progress | None = None,
    bad_rows: int = 0,
    late_fraction: float = 0.0,
    drift: bool = False,
    anomalies: int | Sequence[str] = (),
) -> SampleManifest:
    """Make the sample sources in `out_dir` and return (and write) their manifest. `anomalies`: the periods whose
    prices are inflated, or how many to pick (see `anomalous_periods`)."""
    say = progress or (lambda message: None)
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        say(f"generating TPC-H SF{scale:g} with tpchgen-cli")
        generator = _generate_tpch(work / "tpch", scale)
        built = work / "sample"
        conn = duckdb.connect()
        try:
            tpch = {t: work / "tpch" / f"{t}.parquet" for t in (*FACT_TABLES, *REFERENCE_TABLES)}
            orders, lineitem = sql_literal(str(tpch["orders"])), sql_literal(str(tpch["lineitem"]))
            first, last = conn.execute(f"SELECT min(o_orderdate), max(o_orderdate) FROM {orders}").fetchone()  # type: ignore[misc]
            periods = calendar.periods_between(first, last)
            if late_fraction:  # the last period's late orders arrive in the period after it
                periods.append(calendar.next(periods[-1].key))
            conn.execute("CREATE TABLE periods (period_key VARCHAR, start_date DATE, end_date DATE)")
            conn.executemany("INSERT INTO periods VALUES (?, ?, ?)", [(p.key, p.start, p.end) for p in periods])
            conn.execute(
                f"CREATE TABLE orders_src AS SELECT o.*, p.period_key, 0 AS __injected FROM {orders} o "
                "JOIN periods p ON o.o_orderdate BETWEEN p.start_date AND p.end_date"
            )
            late = []  # before line items are split: they follow their order
            if late_fraction:
                recent = [p.key for p in periods[-LATE_PERIODS - 1 :]]
                # newest first, so no order moves twice
                late = hold_back_late_orders(conn, late_fraction, seed, dict(reversed(list(pairwise(recent)))))
            conn.execute(
                f"CREATE TABLE lineitem_src AS SELECT l.*, o.period_key, 0 AS __injected FROM {lineitem} l "
                "JOIN orders_src o ON o.o_orderkey = l.l_orderkey"
            )
            inflated = [
                inflate_prices(conn, period) for period in anomalous_periods([p.key for p in periods], anomalies, seed)
            ]
            _crm_table(conn, tpch["customer"], seed)
            injected = inject_bad_rows(conn, bad_rows, seed) if bad_rows else []
            say(f"splitting orders into {len(periods)} fiscal periods")
            _split_by_period(
                conn,
                "SELECT * EXCLUDE (__injected) FROM orders_src ORDER BY o_orderkey NULLS LAST, __injected",
                work / "stage" / "orders",
                built / "erp" / "orders",
            )
            say("splitting line items by their order's period")
            _split_by_period(
                conn,
                "SELECT * EXCLUDE (__injected) FROM lineitem_src ORDER BY l_orderkey, l_linenumber, __injected",
                work / "stage" / "lineitem",
                built / "erp" / "lineitem",
            )
            drifted = None
            if drift:
                newest = max(f.stem for f in (built / "erp" / "orders").glob("*.parquet"))
                drifted = change_shape(conn, str(built / "erp" / "orders" / f"{newest}.parquet"), "orders", newest)
            for table in REFERENCE_TABLES:
                shutil.copyfile(tpch[table], built / "erp" / f"{table}.parquet")
            say("writing the CRM customer extract")
            (built / "crm").mkdir(parents=True)
            target = sql_literal(str(built / "crm" / "customers.csv"))
            conn.execute(
                "COPY (SELECT * FROM crm_src ORDER BY TRY_CAST(customer_id AS BIGINT) NULLS LAST, customer_id) "
                f"TO {target} (FORMAT csv, HEADER true)"
            )
            say("counting rows")
            files = _count_files(conn, built)
        finally:
            conn.close()
        totals: dict[str, int] = {}
        for file in files:
            totals[file.table] = totals.get(file.table, 0) + file.rows
        manifest = SampleManifest(
            generator=generator,
            scale=scale,
            seed=seed,
            calendar=calendar.name,
            first_period=min(f.period for f in files if f.period),
            last_period=max(f.period for f in files if f.period),
            files=files,
            totals=totals,
            scenarios=SampleScenarios(
                bad_rows=bad_rows, late_fraction=late_fraction, late=late, drift=drifted, anomalies=inflated
            ),
            injected=injected,
        )
        (built / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        _delivered_on_time(built, files, calendar)
        _swap_in(built, out_dir)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


DELIVERY_TIME = time(6, 0)
"""When the sample's ERP delivers a period's extract: 06:00 UTC the day after the period ends."""


def _delivered_on_time(built: Path, files: list[SampleFile], calendar: FiscalCalendar) -> None:
    """Date each period's extract as the ERP would have delivered it (its modification time: what the freshness
    SLA judges), the morning after its period ends; snapshots keep today's (their period is the one they are
    extracted in)."""
    for file in files:
        if file.period:
            delivered = datetime.combine(calendar.period(file.period).end + timedelta(days=1), DELIVERY_TIME, UTC)
            os.utime(built / file.path, (delivered.timestamp(), delivered.timestamp()))


def _count_files(conn: duckdb.DuckDBPyConnection, built: Path) -> list[SampleFile]:
    files = []
    for path in sorted(built.rglob("*.parquet")):
        relative = path.relative_to(built).as_posix()
        (rows,) = conn.execute(f"SELECT count(*) FROM read_parquet({sql_literal(str(path))})").fetchone()  # type: ignore[misc]
        periodic = path.parent.name in FACT_TABLES
        files.append(
            SampleFile(
                path=relative,
                table=path.parent.name if periodic else path.stem,
                period=path.stem if periodic else None,
                rows=int(rows),
            )
        )
    crm = built / "crm" / "customers.csv"
    (rows,) = conn.execute(f"SELECT count(*) FROM read_csv({sql_literal(str(crm))}, header = true)").fetchone()  # type: ignore[misc]
    files.append(SampleFile(path="crm/customers.csv", table="crm_customers", period=None, rows=int(rows)))
    return files


def read_manifest(out_dir: Path) -> SampleManifest | None:
    """The manifest of the sample in `out_dir`, or None if there is none (or it is unreadable)."""
    file = out_dir / MANIFEST
    if not file.is_file():
        return None
    try:
        return SampleManifest.model_validate(json.loads(file.read_text(encoding="utf-8")))
    except ValueError:
        return None

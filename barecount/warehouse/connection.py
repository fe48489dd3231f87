"""Connections to the warehouse file that wait, visibly, for a busy file: DuckDB only, no Dagster.

`DuckDBWarehouse` (the Dagster resource) connects through `connect`; commands that read or change the
warehouse outside a run use `WarehouseFile`, so they start without importing Dagster.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import duckdb

from barecount.errors import WarehouseBusyError

if TYPE_CHECKING:
    from barecount.config.profiles import Settings
    from barecount.warehouse.bigquery import BigQueryConnection, BigQueryDatasets

log = logging.getLogger("barecount.warehouse")


class Connection(Protocol):
    """What the services need of a warehouse connection: DuckDB's own, or a BigQuery session
    (`warehouse.bigquery.BigQueryConnection`) that takes the same SQL."""

    def execute(self, query: str, parameters: Any = None, /) -> Connection: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...


def on_bigquery(conn: Connection) -> TypeGuard[BigQueryConnection]:
    """Whether `conn` is a BigQuery session (whose catalog is read through its client, not in SQL)."""
    return getattr(conn, "dialect", "duckdb") == "bigquery"


# A connection for SQL a person types: it reads this file and nothing else. No file system (COPY, EXPORT,
# read_csv, ATTACH), no extensions (INSTALL, LOAD of one not built in), and settings locked after these.
SEALED_CONFIG: Mapping[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}


def connect(
    database: str, read_only: bool, config: Mapping[str, Any], wait_timeout_seconds: float
) -> duckdb.DuckDBPyConnection:
    """Open the file; while another process holds its lock, say so once and retry for a bounded time."""
    deadline = time.monotonic() + wait_timeout_seconds
    delay, announced = 0.1, False
    while True:
        try:
            return duckdb.connect(database, read_only=read_only, config=dict(config))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() + delay > deadline:
                raise WarehouseBusyError(
                    f"the warehouse {database} is still held by another process after "
                    f"{wait_timeout_seconds:.0f} s ({exc}); try again when it has finished"
                ) from None
            if not announced:
                log.warning("waiting for the warehouse %s: another process holds it", database)
                announced = True
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


@dataclass(frozen=True)
class WarehouseFile:
    """The warehouse outside a run: one short connection per `get_connection`, closed at once."""

    database: str
    wait_timeout_seconds: float = 120.0
    connection_config: Mapping[str, Any] = field(default_factory=dict)

    def exists(self) -> bool:
        """Whether the file was made (nothing was written before it)."""
        return Path(self.database).exists()

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not Path(self.database).exists():
            raise FileNotFoundError(f"no warehouse at {self.database}: run `barecount demo` or `barecount run`")
        if not read_only:
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.database, read_only, self.connection_config, self.wait_timeout_seconds)
        try:
            yield conn
        finally:
            conn.close()


def warehouse_file(settings: Settings, sealed: bool = False) -> WarehouseFile | BigQueryDatasets:
    """The profile's warehouse for use outside runs: the same file and wait as `defs.resources.build_warehouse`,
    or the profile's BigQuery datasets.

    `sealed` connections run SQL a person typed: see `SEALED_CONFIG`.
    """
    if settings.on_bigquery:  # google-cloud-bigquery is imported by BigQuery profiles only
        from barecount.warehouse.bigquery import bigquery_datasets

        return bigquery_datasets(settings)
    return WarehouseFile(
        database=str(settings.warehouse_path),
        wait_timeout_seconds=settings.duckdb.wait_timeout_seconds,
        connection_config=settings.duckdb.connection_config | (SEALED_CONFIG if sealed else {}),
    )

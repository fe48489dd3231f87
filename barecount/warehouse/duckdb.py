"""The DuckDB warehouse resource: short connections that wait, visibly, for a busy file."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from barecount.errors import WarehouseBusyError

log = logging.getLogger("barecount.warehouse")


class DuckDBWarehouse(DuckDBResource):
    """dagster-duckdb's resource, with read-only connections and a bounded, announced wait.

    A DuckDB file admits one writing process; under `dagster dev` runs, sensors and the code server
    are separate processes, so connections are opened per unit of work and closed at once.
    """

    wait_timeout_seconds: float = Field(
        default=120.0, description="How long to wait for the file while another process holds it."
    )

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:  # type: ignore[override]
        if read_only and not Path(self.database).exists():
            raise FileNotFoundError(f"no warehouse at {self.database}: run `barecount demo` or `barecount run`")
        if not read_only:
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect(read_only)
        try:
            yield conn
        finally:
            conn.close()

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.wait_timeout_seconds
        delay, announced = 0.1, False
        while True:
            try:
                return duckdb.connect(self.database, read_only=read_only, config=dict(self.connection_config))
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() + delay > deadline:
                    raise WarehouseBusyError(
                        f"the warehouse {self.database} is still held by another process after "
                        f"{self.wait_timeout_seconds:.0f} s ({exc}); try again when it has finished"
                    ) from None
                if not announced:
                    log.warning("waiting for the warehouse %s: another process holds it", self.database)
                    announced = True
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

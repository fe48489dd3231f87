"""The resources of a run: the warehouse of the profile (a DuckDB file, with short connections that wait, visibly,
for a busy file; or BigQuery datasets, see `defs.bigquery_resource`) and the source files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from barecount.config.profiles import Settings
from barecount.pipeline.connectors import SourceFiles
from barecount.warehouse.connection import Connection, WarehouseFile, connect


class Warehouse(Protocol):
    """What runs, sensors and commands need of the profile's warehouse resource, on either engine."""

    def get_connection(self, read_only: bool = False) -> AbstractContextManager[Connection]: ...

    def exists(self) -> bool:
        """Whether anything was written yet (a sensor has nothing to read before)."""
        ...


class HeldForRun:
    """A warehouse resource's connection, held for the length of a run (or, under the multiprocess executor, a
    step): the resource declares `_held` and `_in_run` as private attributes and opens `_held` on first use."""

    _held: Connection | None
    _in_run: bool

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._in_run = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._in_run = False
        if self._held is not None:
            self._held.close()  # type: ignore[attr-defined]
            self._held = None


class DuckDBWarehouse(HeldForRun, DuckDBResource):
    """dagster-duckdb's resource, with read-only connections and a bounded, announced wait.

    A DuckDB file admits one writing process; under `dagster dev` runs, sensors and the code server
    are separate processes, so connections are opened per unit of work and closed at once.
    """

    wait_timeout_seconds: float = Field(
        default=120.0, description="How long to wait for the file while another process holds it."
    )

    # A run keeps one connection and hands out cursors of it: opening the file, reading its catalog and
    # checkpointing on close cost ~40 ms, paid otherwise by every step, input and check. Runs of the local profile
    # go one at a time, and sensors wait a bounded time for a busy file, so holding it for a run costs no one.
    _held: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)  # type: ignore[assignment]
    _in_run: bool = PrivateAttr(default=False)

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:  # type: ignore[override]
        if self._in_run:
            if self._held is None:
                Path(self.database).parent.mkdir(parents=True, exist_ok=True)
                self._held = self._connect(read_only=False)
            cursor = self._held.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
            return
        outside_run = WarehouseFile(self.database, self.wait_timeout_seconds, self.connection_config)
        with outside_run.get_connection(read_only) as conn:
            yield conn

    def exists(self) -> bool:
        return Path(self.database).exists()

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        return connect(self.database, read_only, self.connection_config, self.wait_timeout_seconds)


def build_warehouse(settings: Settings, wait_timeout_seconds: float | None = None) -> Warehouse:
    """The profile's warehouse resource (also used directly by the CLI, outside runs); `wait_timeout_seconds`
    replaces the profile's wait (sensors wait briefly and skip a tick instead; BigQuery has no file to wait for)."""
    if settings.on_bigquery:  # google-cloud-bigquery is imported by BigQuery profiles only
        from barecount.defs.bigquery_resource import build_bigquery_warehouse

        return build_bigquery_warehouse(settings)
    return DuckDBWarehouse(
        database=str(settings.warehouse_path),
        wait_timeout_seconds=settings.duckdb.wait_timeout_seconds
        if wait_timeout_seconds is None
        else wait_timeout_seconds,
        connection_config=settings.duckdb.connection_config,
    )


class SourceFilesResource(dg.ConfigurableResource):
    """The folder file connectors read (the profile's `sources_dir`), as `pipeline.connectors.SourceFiles`."""

    root: str = Field(description="Folder holding the source extracts, e.g. data/acme/sources.")

    def files(self) -> SourceFiles:
        return SourceFiles(root=self.root)

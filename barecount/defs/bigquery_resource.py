"""The BigQuery warehouse resource: dagster-gcp's `BigQueryResource`, which also reaches a local emulator, and hands
out connections shaped like DuckDB's (`warehouse.bigquery.BigQueryConnection`) for the services.

dagster-gcp's resource has no endpoint option; with an endpoint (`api_endpoint`, or the project's own emulator
through `emulator_dir`), this one builds the client for it with anonymous credentials (the emulator checks
none). Without one, it is dagster-gcp's own client: credentials from `GOOGLE_APPLICATION_CREDENTIALS` or the
environment, never from a file of the project. Imported only by BigQuery profiles: google-cloud-bigquery costs
the DuckDB profile nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_gcp import BigQueryResource
from google.cloud import bigquery
from pydantic import Field, PrivateAttr

from barecount.config.profiles import Settings
from barecount.defs.resources import HeldForRun
from barecount.evidence.schema import ensure_evidence
from barecount.warehouse.bigquery import BigQueryConnection, bigquery_client, bigquery_connection, google_credentials
from barecount.warehouse.bigquery_emulator import emulator_python, shared_emulator


class BigQueryWarehouse(HeldForRun, BigQueryResource):
    """dagster-gcp's BigQuery resource, pointed at a local emulator when `api_endpoint` or `emulator_dir` is set."""

    dataset_prefix: str = Field(
        default="barecount", description="Prefix of the layer datasets: acme gives acme_raw, acme_gdp..."
    )
    api_endpoint: str | None = Field(
        default=None, description="A running BigQuery emulator's REST endpoint, e.g. http://127.0.0.1:9050."
    )
    emulator_dir: str | None = Field(
        default=None,
        description="The project's own emulator: the folder keeping its tables. It is started on first use and "
        "shared with the other commands and processes that use it.",
    )
    emulator_python: str | None = Field(default=None, description="The Python of the emulator's environment.")

    # a run keeps one session: a session costs a job to open, and its temporary tables and transactions live in it
    _held: BigQueryConnection | None = PrivateAttr(default=None)  # type: ignore[assignment]
    _in_run: bool = PrivateAttr(default=False)

    def endpoint(self) -> str | None:
        if self.emulator_dir is not None and self.emulator_python is not None:
            return shared_emulator(Path(self.emulator_python), Path(self.emulator_dir), str(self.project))
        return self.api_endpoint

    @contextmanager
    def get_client(self) -> Iterator[bigquery.Client]:
        endpoint = self.endpoint()
        if endpoint is None:
            with google_credentials(), super().get_client() as client:
                yield client
            return
        yield bigquery_client(str(self.project), self.location, endpoint)

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[BigQueryConnection]:
        """A session (the run's own, during a run); `read_only` is the caller's promise: BigQuery has no read-only
        session."""
        if self._in_run:
            if self._held is None:
                with self.get_client() as client:
                    self._held = BigQueryConnection(client, self.dataset_prefix)
                # made now, outside any transaction: BigQuery makes no table in one that changed rows, and the
                # run's first evidence may be written after its first rows
                ensure_evidence(self._held)
            yield self._held
            return
        with self.get_client() as client, bigquery_connection(client, self.dataset_prefix) as conn:
            yield conn

    def exists(self) -> bool:
        """Whether the evidence dataset exists (nothing was written before it)."""
        with self.get_connection(read_only=True) as conn:
            return bool(conn.tables(["evidence"]))


def build_bigquery_warehouse(settings: Settings) -> BigQueryWarehouse:
    """The profile's BigQuery resource, its values read from the environment now."""
    target = settings.bigquery
    emulator = (
        {"emulator_dir": str(settings.emulator_dir), "emulator_python": str(emulator_python(settings.paths.root))}
        if target.emulator
        else {}
    )
    return BigQueryWarehouse(
        project=target.project, location=target.location, dataset_prefix=target.dataset_prefix, **emulator
    )

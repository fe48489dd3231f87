"""The BigQuery warehouse resource: dagster-gcp's `BigQueryResource`, which also reaches a local emulator.

dagster-gcp's resource has no endpoint option; with `api_endpoint` set, this one builds the client for that
endpoint with anonymous credentials (the emulator checks none). Without it, it is dagster-gcp's own client:
credentials from `GOOGLE_APPLICATION_CREDENTIALS` or the environment, never from a file of the project.
Imported only by BigQuery profiles: google-cloud-bigquery costs the DuckDB profile nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster_gcp import BigQueryResource
from google.cloud import bigquery
from pydantic import Field

from barecount.warehouse.bigquery import bigquery_client


class BigQueryWarehouse(BigQueryResource):
    """dagster-gcp's BigQuery resource, pointed at a local emulator when `api_endpoint` is set."""

    api_endpoint: str | None = Field(
        default=None, description="A local BigQuery emulator's REST endpoint, e.g. http://127.0.0.1:9050."
    )

    @contextmanager
    def get_client(self) -> Iterator[bigquery.Client]:
        if self.api_endpoint is None:
            with super().get_client() as client:
                yield client
            return
        yield bigquery_client(str(self.project), self.location, self.api_endpoint)

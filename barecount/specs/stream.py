"""Stream manifests: `assets/<domain>/streams.yaml`, one entry per source object landing in `raw`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from barecount.specs.common import SPEC_CONFIG, Identifier

PERIOD_PLACEHOLDER = "{period}"
PERIOD_PLACEHOLDERS = (PERIOD_PLACEHOLDER, "{period_start}", "{period_end}")
"""What a BigQuery query may name its period by: the key, or its first and last day."""


class ConnectorSpec(BaseModel):
    """How to read the source: files under the profile's sources folder, or a BigQuery table or query."""

    model_config = SPEC_CONFIG

    kind: Literal["parquet", "csv", "bigquery"] = Field(
        description="Source format: Parquet or CSV files, or a table or query in BigQuery (BigQuery profiles only)."
    )
    path: str | None = Field(
        default=None,
        description=(
            "Files: the path relative to the profile's sources_dir. A partitioned stream puts "
            "'{period}' where the fiscal period key goes, e.g. 'erp/orders/{period}.parquet'."
        ),
    )
    table: str | None = Field(
        default=None,
        pattern=r"^([A-Za-z0-9_.:-]+\.)?[A-Za-z0-9_]+\.[A-Za-z0-9_{}-]+$",
        description=(
            "BigQuery: an existing table, 'dataset.table' in the profile's project or 'project.dataset.table'. "
            "A partitioned stream reads one table per period, with '{period}' where the period key goes."
        ),
    )
    query: str | None = Field(
        default=None,
        description=(
            "BigQuery: a query in BigQuery's own SQL, run as written. A partitioned stream's query names its "
            "period with '{period}' (the key) or '{period_start}' and '{period_end}' (its first and last day, "
            "YYYY-MM-DD)."
        ),
    )
    delimiter: str = Field(
        default=",",
        min_length=1,
        max_length=1,
        description="CSV only: the field separator. Fields are quoted with double quotes, the first line names them.",
    )

    @model_validator(mode="after")
    def _one_location(self) -> ConnectorSpec:
        given = [name for name in ("path", "table", "query") if getattr(self, name) is not None]
        wanted = ["table", "query"] if self.kind == "bigquery" else ["path"]
        if len(given) != 1 or given[0] not in wanted:
            raise ValueError(f"a {self.kind} connector takes {' or '.join(wanted)}, got {', '.join(given) or 'none'}")
        return self

    @property
    def location_field(self) -> Literal["path", "table", "query"]:
        """The field that says where the source is (the validator above makes it exactly one)."""
        return "query" if self.query is not None else "table" if self.table is not None else "path"

    @property
    def location(self) -> str:
        """Where the source is: the file path, the table or the query."""
        return str(getattr(self, self.location_field))

    def names_period(self) -> bool:
        """Whether the location says which period it reads."""
        placeholders = PERIOD_PLACEHOLDERS if self.query is not None else (PERIOD_PLACEHOLDER,)
        return any(p in self.location for p in placeholders)


class StreamSpec(BaseModel):
    """One source object landing in `raw.<name>`."""

    model_config = SPEC_CONFIG

    name: Identifier = Field(description="Stream name; the Raw table is raw.<name>, the asset raw/<name>.")
    description: str = Field(description="What the source object holds, shown in the Dagster UI.")
    owner: str = Field(description="Owner shown in the UI (an e-mail address or team:<name>).")
    pipeline_id: str | None = Field(
        default=None, description="Stamped as x_pipeline_id; defaults to '<domain>.<name>'."
    )
    credential_id: str = Field(description="Which source credential delivered the rows; stamped as x_credential_id.")
    contract: str = Field(
        pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
        description="Id of the data contract the extract is validated against, e.g. erp.orders.",
    )
    connector: ConnectorSpec = Field(description="Where and how to read the source.")
    partitioned: bool = Field(
        description="True: one extract per fiscal period ('{period}' in the path). False: a reference snapshot."
    )
    period_date_column: str | None = Field(
        default=None,
        description="Source date column that decides a row's fiscal period (documentation, checks).",
    )

    @model_validator(mode="after")
    def _period_placeholder(self) -> StreamSpec:
        field = self.connector.location_field
        names_period = self.connector.names_period()
        if self.partitioned and not names_period:
            raise ValueError(f"a partitioned stream needs '{PERIOD_PLACEHOLDER}' in connector.{field}")
        if not self.partitioned and names_period:
            raise ValueError(f"connector.{field} names a period but the stream is not partitioned")
        return self


class StreamsFile(BaseModel):
    """The file `assets/<domain>/streams.yaml`."""

    model_config = SPEC_CONFIG

    streams: list[StreamSpec] = Field(min_length=1, description="The domain's streams.")

"""Stream manifests: `assets/<domain>/streams.yaml`, one entry per source object landing in `raw`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from barecount.specs.common import SPEC_CONFIG, Identifier

PERIOD_PLACEHOLDER = "{period}"


class ConnectorSpec(BaseModel):
    """How to read the source: files matched by a path under the profile's sources folder."""

    model_config = SPEC_CONFIG

    kind: Literal["parquet", "csv"] = Field(description="Source format (file connectors).")
    path: str = Field(
        description=(
            "File path relative to the profile's sources_dir. A partitioned stream puts "
            "'{period}' where the fiscal period key goes, e.g. 'erp/orders/{period}.parquet'."
        )
    )
    delimiter: str = Field(
        default=",",
        min_length=1,
        max_length=1,
        description="CSV only: the field separator. Fields are quoted with double quotes, the first line names them.",
    )


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
        has_placeholder = PERIOD_PLACEHOLDER in self.connector.path
        if self.partitioned and not has_placeholder:
            raise ValueError(f"a partitioned stream needs '{PERIOD_PLACEHOLDER}' in connector.path")
        if not self.partitioned and has_placeholder:
            raise ValueError(f"connector.path has '{PERIOD_PLACEHOLDER}' but the stream is not partitioned")
        return self


class StreamsFile(BaseModel):
    """The file `assets/<domain>/streams.yaml`."""

    model_config = SPEC_CONFIG

    streams: list[StreamSpec] = Field(min_length=1, description="The domain's streams.")

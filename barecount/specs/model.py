"""GDP models: `assets/<domain>/gdp/<name>.sql` with a sibling `<name>.yaml` (dbt style)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from barecount.specs.common import SPEC_CONFIG, AssetRef, Identifier


class ModelSpec(BaseModel):
    """The YAML beside a model's SQL. The SQL reads its inputs as `<layer>.<name>` tables."""

    model_config = SPEC_CONFIG

    name: Identifier = Field(description="Model name; the table is gdp.<name>. Must equal the file name.")
    description: str = Field(description="What one row means, shown in the Dagster UI.")
    owner: str = Field(description="Owner shown in the UI (an e-mail address or team:<name>).")
    grain: str = Field(description="One row per ... (human description of the grain).")
    primary_key: list[Identifier] = Field(min_length=1, description="Columns that identify a row.")
    partitioned: bool = Field(
        default=True, description="Partitioned by fiscal period (the SQL must return a fiscal_period column)."
    )
    depends_on: list[AssetRef] = Field(
        min_length=1, description="Every asset the SQL reads, e.g. raw/orders; each must appear in the SQL."
    )

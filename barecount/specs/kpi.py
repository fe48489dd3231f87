"""KPI-as-code: `kpis/<kpi>/<version>.yaml` with its SQL in `<version>.sql` beside it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from barecount.specs.common import SPEC_CONFIG, AssetRef, Identifier


class KpiSpec(BaseModel):
    """One version of one KPI. The SQL returns fiscal_period, the dimensions and `value`."""

    model_config = SPEC_CONFIG

    id: Identifier = Field(description="KPI id; the table is kpi.<id>. Must equal the folder name.")
    version: str = Field(
        pattern=r"^\d+\.\d+\.\d+$", description="Semantic version; must equal the file name, e.g. 1.0.0."
    )
    status: Literal["draft", "active", "deprecated"] = Field(description="Only the one active version writes kpi.<id>.")
    label: str = Field(description="Human name, e.g. 'Net revenue'.")
    description: str = Field(description="Definition in words, shown in the Dagster UI.")
    owner: str = Field(description="Owner shown in the UI (an e-mail address or team:<name>).")
    unit: str = Field(description="Unit of `value`, e.g. USD, ratio, count.")
    grain: Literal["fiscal_period"] = Field(
        default="fiscal_period", description="Time grain of the KPI (the partition)."
    )
    dimensions: list[Identifier] = Field(default=[], description="Columns the KPI is broken down by.")
    depends_on: list[AssetRef] = Field(min_length=1, description="Every asset the SQL reads.")

"""KPI-as-code: `kpis/<kpi>/<version>.yaml` with its SQL in `<version>.sql` beside it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from barecount.specs.common import SPEC_CONFIG, AssetRef, Identifier


class KpiThresholds(BaseModel):
    """Acceptance thresholds: a KPI partition outside them is not published."""

    model_config = SPEC_CONFIG

    min: float | None = Field(default=None, description="Lowest acceptable value.")
    max: float | None = Field(default=None, description="Highest acceptable value.")
    max_change_vs_previous: float | None = Field(
        default=None, ge=0, description="Largest relative change against the previous fiscal period (0.35 = 35%)."
    )
    max_change_vs_last_year: float | None = Field(
        default=None, ge=0, description="Largest relative change against the same period of the previous fiscal year."
    )

    @model_validator(mode="after")
    def _ordered(self) -> KpiThresholds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self


class CoverageRule(BaseModel):
    """When a period counts as only partly covered by the data (e.g. the first and last of a sample).

    A partial period is checked against its bounds but not compared with other periods, and is not a
    baseline for the periods compared with it.
    """

    model_config = SPEC_CONFIG

    input: AssetRef = Field(description="The input whose dates show coverage, e.g. gdp/order_lines.")
    date_column: Identifier = Field(description="Its date column, e.g. order_date.")
    min_share: float = Field(gt=0, le=1, description="Share of the period's days that must have data (0.9 = 90%).")


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
    thresholds: KpiThresholds | None = Field(default=None, description="Acceptance thresholds (a blocking check).")
    coverage: CoverageRule | None = Field(default=None, description="Which periods the data only partly covers.")

    @model_validator(mode="after")
    def _coverage_input_is_an_input(self) -> KpiSpec:
        if self.coverage is not None and self.coverage.input not in self.depends_on:
            raise ValueError(f"coverage.input {self.coverage.input} is not in depends_on")
        return self

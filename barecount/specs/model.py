"""GDP models: `assets/<domain>/gdp/<name>.sql` with a sibling `<name>.yaml` (dbt style)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from barecount.specs.common import SPEC_CONFIG, AssetRef, Identifier

PiiTreatment = Literal["hash", "redact"]
"""`hash`: a keyed SHA-256 (the key from the environment), equal inputs give equal outputs so joins and
counts still work; `redact`: the value is replaced by a fixed text (NULL stays NULL)."""


class SurvivorSource(BaseModel):
    """One source of a merged entity: the table and how its rows are keyed and dated."""

    model_config = SPEC_CONFIG

    asset: AssetRef = Field(description="The input asset, e.g. raw/crm_customers.")
    key: Identifier = Field(description="Its column holding the entity key.")
    updated_at: Identifier | None = Field(
        default=None, description="Its column saying when a record last changed (none: older than any dated one)."
    )


class AttributeRule(BaseModel):
    """How one attribute of the merged entity is chosen among the sources."""

    model_config = SPEC_CONFIG

    rule: Literal["source_priority", "most_recent_non_null", "fixed"] = Field(
        description="source_priority: the first source in `priority` with a value; most_recent_non_null: the "
        "value updated last (ties by `priority`); fixed: always `source`."
    )
    columns: dict[Identifier, Identifier] = Field(min_length=1, description="Source name -> its column.")
    priority: list[Identifier] = Field(default=[], description="Source names, most trusted first.")
    source: Identifier | None = Field(default=None, description="For `fixed`: the one source.")

    @model_validator(mode="after")
    def _consistent(self) -> AttributeRule:
        if self.rule == "fixed":
            if self.source is None or list(self.columns) != [self.source]:
                raise ValueError("a fixed rule names its `source` and exactly that source's column")
        elif sorted(self.priority) != sorted(self.columns):
            raise ValueError("`priority` must list every source in `columns`, once")
        return self


class SurvivorshipSpec(BaseModel):
    """One row per entity key found in any source; each attribute chosen by its rule, its winner recorded."""

    model_config = SPEC_CONFIG

    key: Identifier = Field(description="Output column of the entity key.")
    sources: dict[Identifier, SurvivorSource] = Field(min_length=2, description="Source name -> source.")
    attributes: dict[Identifier, AttributeRule] = Field(min_length=1, description="Output column -> its rule.")

    @model_validator(mode="after")
    def _known_sources(self) -> SurvivorshipSpec:
        for name, rule in self.attributes.items():
            unknown = sorted(set(rule.columns) - set(self.sources))
            if unknown:
                raise ValueError(f"attribute {name} names unknown source(s) {', '.join(unknown)}")
        return self


class ModelTests(BaseModel):
    """Data tests on a model's output, run on the rows each run writes (the primary key is always unique)."""

    model_config = SPEC_CONFIG

    not_null: list[Identifier] = Field(default=[], description="Columns that must never be NULL.")
    accepted_values: dict[Identifier, list[str]] = Field(
        default={}, description="Column -> the only values it may hold (NULL is not one of them)."
    )


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
    late_periods: int = Field(
        default=0,
        ge=0,
        le=12,
        description="Rows of a period may arrive in the extracts of up to this many later periods. The model then "
        "also reads those later periods of its partitioned inputs, its SQL places each row in the period of its "
        "date, and a row that arrives late restates its period.",
    )
    survivorship: SurvivorshipSpec | None = Field(
        default=None, description="Merge one entity from several sources by rules; the SQL is generated (no .sql)."
    )
    pii: dict[Identifier, PiiTreatment] = Field(
        default={}, description="Output columns holding personal data and how each is masked before it is written."
    )
    tests: ModelTests = Field(
        default=ModelTests(), description="Data tests run as a blocking check on each period written."
    )

    @model_validator(mode="after")
    def _late_rows_need_periods(self) -> ModelSpec:
        if self.late_periods and not self.partitioned:
            raise ValueError("late_periods applies to a partitioned model only")
        return self

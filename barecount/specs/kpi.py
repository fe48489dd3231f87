"""KPI-as-code: `kpis/<kpi>/<version>.yaml` with its SQL in `<version>.sql` beside it."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from barecount.specs.common import SPEC_CONFIG, AssetRef, Identifier, bounds


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
    measure: Identifier | None = Field(
        default=None, description="The measure judged, for a KPI with several `measures` (otherwise `value`)."
    )

    def describe(self) -> str:
        """The thresholds as a person reads them, e.g. `value ≥ 0; change vs the previous period ≤ 75%`."""
        low, high = (None if v is None else f"{v:g}" for v in (self.min, self.max))
        parts = bounds(self.measure or "value", low, high)
        if self.max_change_vs_previous is not None:
            parts.append(f"change vs the previous period ≤ {self.max_change_vs_previous:.0%}")
        if self.max_change_vs_last_year is not None:
            parts.append(f"change vs the same period last year ≤ {self.max_change_vs_last_year:.0%}")
        return "; ".join(parts) or "none"

    @model_validator(mode="after")
    def _ordered(self) -> KpiThresholds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self


class AnomalyRule(BaseModel):
    """Score each period against a seasonal baseline; an outlier is flagged, not held back (a non-blocking check).

    The period's expected value is the median of the trailing periods, moved by how far the same period last
    year stood from the median of its own trailing periods (the season, through the fiscal calendar). The score
    is the period's distance from that expectation in robust deviations: median absolute deviations (x 1.4826)
    of the earlier periods' distances from theirs. A flagged period enters later baselines at its expected value.
    """

    model_config = SPEC_CONFIG

    trailing_periods: int = Field(
        default=12,
        ge=3,
        le=60,
        description="Periods in the level's median. A period is scored once twice this many periods precede it "
        "(the first half builds the baseline, the second the typical deviation).",
    )
    threshold: float = Field(default=5.0, gt=0, description="A score beyond ± this flags the period.")
    per_day: bool = Field(
        default=False,
        description="Compare values per day of the period: for sums, whose 5-week periods (and a 53-week year's "
        "last) hold more days. Rates and averages leave it off.",
    )
    measure: Identifier | None = Field(
        default=None, description="The measure scored, for a KPI with several `measures` (otherwise `value`)."
    )

    def describe(self) -> str:
        scaled = " per day" if self.per_day else ""
        return (
            f"{self.measure or 'value'}{scaled} within ±{self.threshold:g} robust deviations of a seasonal baseline "
            f"(the trailing {self.trailing_periods} periods and the same period last year)"
        )


class CoverageRule(BaseModel):
    """When a period counts as only partly covered by the data (e.g. the first and last of a sample).

    A partial period is checked against its bounds but not compared with other periods, and is not a
    baseline for the periods compared with it.
    """

    model_config = SPEC_CONFIG

    input: AssetRef = Field(description="The input whose dates show coverage, e.g. gdp/order_lines.")
    date_column: Identifier = Field(description="Its date column, e.g. order_date.")
    min_share: float = Field(gt=0, le=1, description="Share of the period's days that must have data (0.9 = 90%).")


class Tolerance(BaseModel):
    """How far a KPI value may be from the system of record's: |kpi - record| <= absolute + relative x |record|."""

    model_config = SPEC_CONFIG

    absolute: float = Field(default=0, ge=0, description="Allowed absolute difference (0.01 = a cent).")
    relative: float = Field(default=0, ge=0, description="Allowed difference relative to the record (0.001 = 0.1%).")


class Reconciliation(BaseModel):
    """An independent SQL against the system of record that must give the KPI's numbers.

    It reads the source extracts as `source.<stream>` (the files as delivered, not Raw) and may read
    `calendar.fiscal_days` to place dates in fiscal periods; it returns the KPI's columns.
    """

    model_config = SPEC_CONFIG

    description: str = Field(description="What the SQL recomputes, from which records.")
    sql: str = Field(min_length=1, description="The SELECT over source.<stream> tables.")
    tolerance: Tolerance = Field(default=Tolerance(), description="Allowed difference per measure (default: exact).")


KPI_TABLE_VERSION_SEPARATOR = "__v"


class KpiSpec(BaseModel):
    """One version of one KPI. The SQL returns fiscal_period, the dimensions and `value` (or its `measures`)."""

    model_config = SPEC_CONFIG

    id: Identifier = Field(description="KPI id; the table is kpi.<id>. Must equal the folder name.")
    version: str = Field(
        pattern=r"^\d+\.\d+\.\d+$", description="Semantic version; must equal the file name, e.g. 1.0.0."
    )
    status: Literal["draft", "candidate", "active", "deprecated"] = Field(
        description="The one active version writes kpi.<id> and is published; a candidate writes "
        "kpi.<id>__v<major>_<minor>_<patch> beside it for comparison; draft and deprecated are not built."
    )
    label: str = Field(description="Human name, e.g. 'Net revenue'.")
    description: str = Field(description="Definition in words, shown in the Dagster UI.")
    owner: str = Field(description="Owner shown in the UI (an e-mail address or team:<name>).")
    unit: str = Field(description="Unit of `value`, e.g. USD, ratio, count.")
    grain: Literal["fiscal_period"] = Field(
        default="fiscal_period", description="Time grain of the KPI (the partition)."
    )
    dimensions: list[Identifier] = Field(default=[], description="Columns the KPI is broken down by.")
    measures: list[Identifier] = Field(
        default=[], description="The named measures of a multi-measure KPI (none: the one measure is `value`)."
    )
    depends_on: list[AssetRef] = Field(min_length=1, description="Every asset the SQL reads.")
    thresholds: KpiThresholds | None = Field(default=None, description="Acceptance thresholds (a blocking check).")
    coverage: CoverageRule | None = Field(default=None, description="Which periods the data only partly covers.")
    reconciliation: Reconciliation | None = Field(
        default=None, description="Recompute the KPI from the system of record (a blocking check)."
    )
    anomaly: AnomalyRule | None = Field(
        default=None, description="Score each period against a seasonal baseline (a non-blocking check)."
    )

    @property
    def measure_columns(self) -> list[str]:
        return self.measures or ["value"]

    @property
    def judged_measure(self) -> str:
        """The measure the thresholds judge."""
        return (self.thresholds.measure if self.thresholds else None) or "value"

    @property
    def scored_measure(self) -> str:
        """The measure the anomaly score follows."""
        return (self.anomaly.measure if self.anomaly else None) or "value"

    @property
    def table_name(self) -> str:
        """kpi.<id> for the active version, kpi.<id>__v<major>_<minor>_<patch> for a candidate."""
        if self.status == "candidate":
            return f"{self.id}{KPI_TABLE_VERSION_SEPARATOR}{self.version.replace('.', '_')}"
        return self.id

    @model_validator(mode="after")
    def _published_is_gated(self) -> KpiSpec:
        if self.status == "active" and self.thresholds is None:
            raise ValueError(
                "thresholds: the active version is published, so it declares acceptance thresholds (min, max, "
                "max_change_vs_previous, max_change_vs_last_year) that keep a wrong number out of published"
            )
        return self

    @model_validator(mode="after")
    def _coverage_input_is_an_input(self) -> KpiSpec:
        if self.coverage is not None and self.coverage.input not in self.depends_on:
            raise ValueError(f"coverage.input {self.coverage.input} is not in depends_on")
        return self

    @model_validator(mode="after")
    def _measures_known(self) -> KpiSpec:
        overlap = sorted(set(self.measures) & set(self.dimensions))
        if overlap:
            raise ValueError(f"{', '.join(overlap)} cannot be both a dimension and a measure")
        for field, rule in (("thresholds", self.thresholds), ("anomaly", self.anomaly)):
            if rule is None:
                continue
            measure = rule.measure
            if self.measures and measure not in self.measures:
                raise ValueError(
                    f"{field}.measure must name one of the measures ({', '.join(self.measures)}), not {measure}"
                )
            if not self.measures and measure not in (None, "value"):
                raise ValueError(f"{field}.measure {measure}: this KPI has one measure, `value`")
        return self


FixtureValue = str | int | float | bool | date | None
"""A value in a fixture row (YAML reads 2024-02-10 as a date)."""


class FixtureTable(BaseModel):
    """A small input table: typed columns and rows in column order."""

    model_config = SPEC_CONFIG

    columns: dict[Identifier, str] = Field(
        min_length=1, description="Column -> DuckDB type, e.g. extended_price: DECIMAL(15,2)."
    )
    rows: list[list[FixtureValue]] = Field(default=[], description="Rows, values in column order.")

    @model_validator(mode="after")
    def _row_widths(self) -> FixtureTable:
        for index, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"row {index} has {len(row)} values for {len(self.columns)} columns")
        return self


class KpiFixture(BaseModel):
    """`kpis/<kpi>/tests/<name>.yaml`: input tables and the rows the KPI's SQL must return for them."""

    model_config = SPEC_CONFIG

    description: str = Field(description="What the fixture shows, e.g. 'a discount lowers revenue'.")
    version: str | None = Field(
        default=None, pattern=r"^\d+\.\d+\.\d+$", description="The KPI version tested (default: the active one)."
    )
    inputs: dict[AssetRef, FixtureTable] = Field(min_length=1, description="Each input the SQL reads -> its rows.")
    expect: list[dict[Identifier, FixtureValue]] = Field(
        description="The rows expected: fiscal_period, the dimensions and the measures (any order of rows)."
    )

"""Pipelines as YAML: `pipelines/<provider>/<domain>/<pipeline>.yml`, in the product's pipeline config standard.

A pipeline is what the service runs for an organisation (`POST /pipelines/run/{org}/{provider}/{domain}/
{pipeline}`): ordered steps, each a processor over the asset graph (`raw.ingest`, `gdp.build`, `kpi.build`,
`publish`) with its selection, the steps it waits for, its timeout and its retries. Template variables
(`{org_slug}`, `${run_id}`, `${start_date}`, ...) are resolved per run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from barecount.specs.common import SPEC_CONFIG, Identifier

ProcessorType = Literal["raw.ingest", "gdp.build", "kpi.build", "publish"]
PROCESSOR_LAYERS: Mapping[str, tuple[str, ...]] = {
    "raw.ingest": ("raw", "calendar"),
    "gdp.build": ("gdp",),
    "kpi.build": ("kpi",),
    "publish": ("published",),
}
"""The layers each processor builds: its selection may name assets of these layers only (default: all of them)."""

TEMPLATE_VARIABLES = {
    "org_slug": "the organisation's slug",
    "run_id": "the pipeline run's id",
    "pipeline_id": "the pipeline's id",
    "start_date": "the first day of the run's first fiscal period",
    "end_date": "the last day of the run's last fiscal period",
    "first_period": "the run's first fiscal period",
    "last_period": "the run's last fiscal period",
    "requested_by": "the API key (its id) that asked for the run",
}
"""What `{org_slug}` and `${name}` in a pipeline resolve to, per run."""
TEMPLATE = re.compile(r"\{org_slug\}|\$\{(?P<name>[^}]*)\}")
SEMVER = r"^\d+\.\d+\.\d+$"
CRON_FIELD = r"[0-9*/,\-A-Za-z?LW#]+"


def unknown_variables(text: str) -> list[str]:
    """The `${name}`s in `text` that are not template variables."""
    return [m["name"] for m in TEMPLATE.finditer(text) if m["name"] is not None and m["name"] not in TEMPLATE_VARIABLES]


def resolve_template(text: str, values: Mapping[str, str]) -> str:
    """`text` with `{org_slug}` and each `${name}` replaced by its value for this run."""
    return TEMPLATE.sub(lambda m: values[m["name"] or "org_slug"], text)


class StepRetry(BaseModel):
    """How often a failed step is tried again, and how long to wait between tries."""

    model_config = SPEC_CONFIG

    max_attempts: int = Field(default=1, ge=1, le=10, description="Attempts in all (1: no retry).")
    backoff_seconds: float = Field(default=5.0, ge=0, le=3600, description="Wait before the next attempt.")


class StepConfig(BaseModel):
    """What a processor works on."""

    model_config = SPEC_CONFIG

    select: list[str] | None = Field(
        default=None,
        description="Assets of the processor's layers, as `barecount run --select` takes them (`kpi/net_revenue`, "
        "`kpi/*`, `group:gdp`); default: every asset of its layers.",
    )


class PipelineStep(BaseModel):
    """One step: a processor run as one Dagster run over its selection, for the run's fiscal periods."""

    model_config = SPEC_CONFIG

    step_id: Identifier = Field(description="Unique within the pipeline; other steps name it in depends_on.")
    ps_type: ProcessorType = Field(
        description="Processor: raw.ingest (land the extracts), gdp.build (conform), kpi.build (compute and gate "
        "the KPIs), publish (publish the KPI periods whose gates passed)."
    )
    description: str = Field(default="", description="What the step is for.")
    config: StepConfig = Field(default_factory=StepConfig, description="The processor's selection.")
    depends_on: list[Identifier] = Field(
        default_factory=list, description="Steps that must complete first (steps listed before this one)."
    )
    timeout_seconds: int = Field(
        default=1800, ge=1, le=86400, description="The longest the step may take; past it the run fails."
    )
    retry: StepRetry = Field(default_factory=StepRetry, description="Attempts and backoff when the step fails.")


class PipelineSpec(BaseModel):
    """A pipeline an organisation may run through the service."""

    model_config = SPEC_CONFIG

    pipeline_id: Identifier = Field(description="Unique pipeline template identifier (stamped as a run tag).")
    name: str = Field(min_length=1, description="Human-readable pipeline name.")
    description: str = Field(default="", description="What the pipeline is for.")
    provider: Identifier = Field(description="Provider key: the folder under pipelines/.")
    domain: Identifier = Field(description="Domain: the folder under the provider; tenants enable domains.")
    version: Annotated[str, StringConstraints(pattern=SEMVER)] = Field(description="Config version (x.y.z).")
    schedule: str | None = Field(
        default=None, description="Cron expression (5 fields) for scheduled runs, in the organisation's time zone."
    )
    run_tags: dict[str, str] = Field(
        default_factory=dict,
        description="Tags on every Dagster run of the pipeline, shown in the UI; values may use {org_slug} and "
        f"${{name}} for {', '.join(sorted(TEMPLATE_VARIABLES))}.",
    )
    steps: list[PipelineStep] = Field(min_length=1, description="Ordered steps.")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str | None) -> str | None:
        if schedule is not None and not re.fullmatch(rf"{CRON_FIELD}(\s+{CRON_FIELD}){{4}}", schedule.strip()):
            raise ValueError(f"'{schedule}' is not a cron expression of 5 fields (e.g. '0 6 * * *')")
        return schedule

    @field_validator("run_tags")
    @classmethod
    def _known_variables(cls, tags: dict[str, str]) -> dict[str, str]:
        for name, value in tags.items():
            unknown = unknown_variables(value)
            if unknown:
                known = ", ".join(f"${{{v}}}" for v in sorted(TEMPLATE_VARIABLES) if v != "org_slug")
                raise ValueError(f"{name}: unknown template variable ${{{unknown[0]}}} (known: {{org_slug}}, {known})")
        return tags

    @field_validator("steps")
    @classmethod
    def _steps_in_order(cls, steps: list[PipelineStep]) -> list[PipelineStep]:
        seen: set[str] = set()
        for step in steps:
            if step.step_id in seen:
                raise ValueError(f"step_id '{step.step_id}' is used twice")
            later = [d for d in step.depends_on if d not in seen]
            if later:
                raise ValueError(f"step '{step.step_id}' depends on '{later[0]}', which is not a step listed before it")
            seen.add(step.step_id)
        return steps

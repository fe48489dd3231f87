"""Environment profiles (`resources/profiles/<name>.yaml`) and tenants (`resources/tenants/<slug>.yaml`).

A profile says where the warehouse and the sources are; a tenant says whose data it is and which
fiscal calendar partitions it. `Settings` joins the two with the environment overrides, once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from barecount.calendar import FiscalCalendar, load_calendar
from barecount.calendar.schedule import ScheduleSpec
from barecount.config.project import ORG_ENV, PROFILE_ENV, WAREHOUSE_ENV, ProjectPaths
from barecount.errors import SpecErrors, UsageError
from barecount.yaml_source import parse_spec

DEFAULT_PROFILE = "local"
ORG_PLACEHOLDER = "{org}"
"""Where a profile's paths and dataset prefix take the organisation's slug."""


class DuckDBWarehouseSpec(BaseModel):
    """An embedded DuckDB file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["duckdb"] = Field(description="Warehouse engine.")
    path: str = Field(
        description="DuckDB file, relative to the project root, with {org} where the organisation's slug goes: "
        "each organisation has a file of its own (BARECOUNT_WAREHOUSE overrides it for one command).",
    )
    wait_timeout_seconds: float = Field(
        default=120, gt=0, description="How long to wait for a DuckDB file held by another process."
    )
    memory_limit: str = Field(
        default="1GB",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="The most memory DuckDB holds in one process, e.g. 1GB or 4GiB; past it, DuckDB drops cached "
        "blocks and spills to a .tmp folder beside the file. DuckDB's own default, 80% of the machine's memory, "
        "fills with a cache of every table written (a TPC-H SF1 run peaked at 2.8 GB, against 1.3 GB at 1GB in "
        "no more time).",
    )

    @field_validator("path")
    @classmethod
    def _one_file_per_org(cls, path: str) -> str:
        if ORG_PLACEHOLDER not in path:
            raise ValueError(
                f"put {ORG_PLACEHOLDER} in the path (e.g. data/{ORG_PLACEHOLDER}/warehouse.duckdb): "
                "each organisation has a DuckDB file of its own"
            )
        return path

    @property
    def connection_config(self) -> dict[str, str]:
        """DuckDB settings every connection of this warehouse opens with."""
        return {"memory_limit": self.memory_limit}


ENVIRONMENT_VARIABLE = r"^[A-Z_][A-Z0-9_]*$"
ENVIRONMENT_REFERENCE = r"\$\{[A-Z_][A-Z0-9_]*\}"
"""`${VARIABLE}`: a value read from the environment when the profile is used, never written in the file."""


class BigQueryWarehouseSpec(BaseModel):
    """A BigQuery project: a dataset per layer (`<prefix>_raw`, `<prefix>_gdp`, ...). Credentials come from
    GOOGLE_APPLICATION_CREDENTIALS or the environment's default, never from the profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["bigquery"] = Field(description="Warehouse engine.")
    project: str = Field(
        pattern=rf"^([a-z][a-z0-9-]{{4,28}}[a-z0-9]|{ENVIRONMENT_REFERENCE})$",
        description="Google Cloud project id, or ${VARIABLE} to read it from the environment.",
    )
    location: str = Field(
        default="US",
        pattern=rf"^([A-Za-z0-9-]+|{ENVIRONMENT_REFERENCE})$",
        description="Location of the datasets and jobs (US, EU, europe-west1...), or ${VARIABLE}.",
    )
    dataset_prefix: str = Field(
        pattern=rf"^(([a-z]|\{{org\}})([a-z0-9_]|\{{org\}})*|{ENVIRONMENT_REFERENCE})$",
        description="Prefix of an organisation's layer datasets, with {org} where its slug goes: {org} gives "
        "acme_raw, acme_gdp... for acme; or ${VARIABLE}. A prefix without {org} gets _<org> appended, so that "
        "organisations never share a dataset.",
    )
    emulator: bool = Field(
        default=False,
        description="Use a local BigQuery emulator that BareCount starts and stops (`make bqemulator` installs "
        "it), to try the profile and test without a cloud project.",
    )

    def resolve(self, shown: str, org: str) -> BigQueryTarget:
        """The project, location and `org`'s prefix with each ${VARIABLE} read from the environment now; a
        variable that is not set is a `UsageError` naming it and the profile file (`shown`)."""
        values = {}
        for name in ("project", "location", "dataset_prefix"):
            value = getattr(self, name)
            if re.fullmatch(ENVIRONMENT_REFERENCE, value):
                variable = value[2:-1]
                if not os.environ.get(variable):
                    raise UsageError(f"{shown}: warehouse.{name} is {value}, and {variable} is not set")
                value = os.environ[variable]
            values[name] = value
        prefix = values["dataset_prefix"]
        own = prefix.replace(ORG_PLACEHOLDER, org) if ORG_PLACEHOLDER in prefix else f"{prefix}_{org}"
        values["dataset_prefix"] = own
        return BigQueryTarget(**values, emulator=self.emulator)


@dataclass(frozen=True)
class BigQueryTarget:
    """A BigQuery profile's warehouse with its values read from the environment."""

    project: str
    location: str
    dataset_prefix: str
    emulator: bool


class Profile(BaseModel):
    """One environment: `resources/profiles/<name>.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Profile name; must equal the file name.")
    description: str = Field(default="", description="What this environment is for.")
    tenant: str = Field(
        description="Slug of the organisation commands act on when none is named (--org or BARECOUNT_ORG)."
    )
    warehouse: DuckDBWarehouseSpec | BigQueryWarehouseSpec = Field(
        discriminator="kind", description="Where tables are written."
    )
    sources_dir: str = Field(
        description="Folder the file connectors read, relative to the project root; {org} in it is the "
        "organisation's slug."
    )


class FiscalYearRange(BaseModel):
    """Inclusive range of fiscal years the calendar covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first: int = Field(ge=1900, le=2200, description="First fiscal year of the calendar.")
    last: int = Field(ge=1900, le=2200, description="Last fiscal year of the calendar.")

    @model_validator(mode="after")
    def _ordered(self) -> FiscalYearRange:
        if self.last < self.first:
            raise ValueError(f"last ({self.last}) is before first ({self.first})")
        return self


class ActivePeriods(BaseModel):
    """The fiscal periods that are partitions of the assets, when not the range the sources cover."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first: str = Field(pattern=r"^FY\d{4}-P\d{2}$", description="First period key, e.g. FY1992-P01.")
    last: str | None = Field(
        default=None, pattern=r"^FY\d{4}-P\d{2}$", description="Last period key (default: the last with extracts)."
    )


AlertKind = Literal["blocked", "gate_failed", "late", "anomaly", "run_failed", "run_succeeded"]
"""What an alert can be about: a period blocked by drift (an approval is needed), a gate that failed (a KPI beyond
its thresholds among them), an extract delivered after its SLA, a KPI period that scored as an anomaly, a run
that failed for another reason, a run that succeeded."""
CATCH_ALL_ALERT_ENV = "BARECOUNT_ALERT_WEBHOOK_URL"
"""When set, a webhook that gets every alert but `run_succeeded`, beside the tenant's own targets."""


class AlertTarget(BaseModel):
    """A webhook alerts are posted to as JSON. Its URL (which may carry a secret token) is read from an
    environment variable, never from a file; a target whose variable is not set is off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="Target name, as the evidence records it.")
    url_env: str = Field(pattern=ENVIRONMENT_VARIABLE, description="Environment variable holding the webhook's URL.")
    events: list[AlertKind] = Field(
        default=["blocked", "gate_failed", "late", "anomaly", "run_failed"], description="The kinds of alert it gets."
    )
    timeout_seconds: float = Field(default=5.0, gt=0, le=60, description="How long one attempt waits for an answer.")
    attempts: int = Field(default=3, ge=1, le=10, description="Attempts per alert and delivery, with backoff.")
    backoff_seconds: float = Field(
        default=1.0, ge=0, le=60, description="Wait before the second attempt; it doubles before each further one."
    )


class RetentionRule(BaseModel):
    """How long one layer keeps a period's rows. The evidence is never deleted: each deletion goes on the
    ledger with the table, the period and the rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layer: Literal["raw", "quarantine"] = Field(description="The layer whose period tables the rule trims.")
    keep_periods: int | None = Field(default=None, ge=1, description="Keep the newest N periods that have rows.")
    keep_days: int | None = Field(default=None, ge=1, description="Keep the periods that ended in the last N days.")

    @model_validator(mode="after")
    def _one_limit(self) -> RetentionRule:
        if (self.keep_periods is None) == (self.keep_days is None):
            raise ValueError("give keep_periods or keep_days (one of them)")
        return self


class DeclaredExport(BaseModel):
    """An export the organisation's runs make as they publish: the periods each run wrote, as files with their
    manifest and a ledger entry, exactly as `barecount export` writes them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(
        pattern=r"^((published|gdp)/)?[a-z][a-z0-9_]*$",
        description="A KPI id (its published periods, e.g. net_revenue) or a GDP table (gdp/<model>).",
    )
    format: Literal["parquet", "csv"] = Field(default="parquet", description="The files' format.")
    out: str = Field(
        default="data/{org}/exports",
        description="The folder the files go under (<schema>.<table>/), relative to the project root; {org} is "
        "the organisation's slug.",
    )


class PlanLimits(BaseModel):
    """How many pipeline runs an organisation may request through the service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daily_runs: int = Field(default=100, ge=0, description="Runs per UTC day.")
    monthly_runs: int = Field(default=1000, ge=0, description="Runs per UTC calendar month.")
    concurrent_runs: int = Field(default=2, ge=1, description="Runs at once (also Dagster's run-tag limit per org).")


class Subscription(BaseModel):
    """The organisation's plan: only an ACTIVE or TRIAL subscription may run pipelines."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["ACTIVE", "TRIAL", "SUSPENDED", "CANCELLED", "EXPIRED"] = Field(
        default="ACTIVE", description="ACTIVE and TRIAL may run pipelines; the others are refused (403)."
    )
    plan: str = Field(default="standard", description="The plan's name, as the service reports it.")
    limits: PlanLimits = Field(default_factory=PlanLimits, description="Daily, monthly and concurrent run limits.")

    @property
    def may_run(self) -> bool:
        return self.status in ("ACTIVE", "TRIAL")


class SampleDataSettings(BaseModel):
    """How `barecount sample-data` and `demo` make this organisation's sample sources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=0, ge=0, description="Seed of the CRM extract and the scenarios.")


class Tenant(BaseModel):
    """One organisation: `resources/tenants/<slug>.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,39}$",
        description="Stamped on every row as x_org_slug; names the org's warehouse file, datasets and code location "
        "(lower case, digits and _, as BigQuery dataset names allow).",
    )
    name: str = Field(description="Display name.")
    calendar: str = Field(description="Fiscal calendar preset in resources/calendars/ (file stem).")
    fiscal_years: FiscalYearRange = Field(
        description="Fiscal years the calendar covers: period keys and the calendar.* tables."
    )
    active_periods: ActivePeriods | None = Field(
        default=None,
        description="The periods that are partitions of the assets in Dagster and `barecount run` (default: "
        "from the first to the last period with source extracts, extended as extracts arrive).",
    )
    alerts: list[AlertTarget] = Field(
        default_factory=list, description="Webhooks that get alerts: blocked periods, failed gates, failed runs."
    )
    retention: list[RetentionRule] = Field(
        default_factory=list, description="How long raw and quarantine keep a period's rows (default: forever)."
    )
    schedules: list[ScheduleSpec] = Field(
        default_factory=list,
        description="Runs by the fiscal calendar: the close of each period, a daily refresh of the open one.",
    )
    exports: list[DeclaredExport] = Field(
        default_factory=list, description="Exports made by every run that publishes their target's periods."
    )
    credentials: dict[str, Annotated[str, Field(pattern=ENVIRONMENT_VARIABLE)]] = Field(
        default_factory=dict,
        description="Per credential id (a stream's credential_id), the environment variable holding the secret: "
        "never the value. A run is refused while a variable its streams need is not set.",
    )
    domains: list[str] | None = Field(
        default=None,
        description="The domains (pipelines/<provider>/<domain>/) whose pipelines the organisation may run "
        "through the service (default: all).",
    )
    subscription: Subscription = Field(
        default_factory=Subscription, description="The plan: status and run limits the service enforces."
    )
    sample_data: SampleDataSettings = Field(
        default_factory=SampleDataSettings, description="How the organisation's sample sources are generated."
    )

    @model_validator(mode="after")
    def _names_unique(self) -> Tenant:
        named = (
            ("schedule", [s.name for s in self.schedules]),
            ("alert", [a.name for a in self.alerts]),
            ("retention layer", [r.layer for r in self.retention]),
        )
        for kind, names in named:
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{kind} name(s) {', '.join(repeated)} used twice")
        return self


@dataclass(frozen=True)
class Settings:
    """The resolved environment: profile, tenant, calendar and paths, with overrides applied."""

    paths: ProjectPaths
    profile: Profile
    tenant: Tenant

    @cached_property
    def calendar(self) -> FiscalCalendar:
        return load_calendar(self.paths.calendars, self.tenant.calendar, display_root=self.paths.root)

    @property
    def duckdb(self) -> DuckDBWarehouseSpec:
        """The profile's DuckDB warehouse; a BigQuery profile is refused with what to use instead."""
        warehouse = self.profile.warehouse
        if not isinstance(warehouse, DuckDBWarehouseSpec):
            raise UsageError(
                f"profile '{self.profile.name}' keeps its warehouse in BigQuery; this command works on a DuckDB "
                "file: use a DuckDB profile (e.g. --profile local)"
            )
        return warehouse

    def alert_targets(self) -> list[tuple[AlertTarget, str]]:
        """(target, its URL) for each webhook that is on: the tenant's whose variable is set, and the catch-all."""
        targets = list(self.tenant.alerts)
        if os.environ.get(CATCH_ALL_ALERT_ENV):
            targets.append(AlertTarget(name="catch-all", url_env=CATCH_ALL_ALERT_ENV))
        return [(t, os.environ[t.url_env]) for t in targets if os.environ.get(t.url_env)]

    @property
    def on_bigquery(self) -> bool:
        return isinstance(self.profile.warehouse, BigQueryWarehouseSpec)

    @cached_property
    def bigquery(self) -> BigQueryTarget:
        """The profile's BigQuery warehouse, its values read from the environment."""
        warehouse = self.profile.warehouse
        if not isinstance(warehouse, BigQueryWarehouseSpec):
            raise UsageError(f"profile '{self.profile.name}' keeps its warehouse in DuckDB, not BigQuery")
        return warehouse.resolve(
            self.paths.relative(self.paths.profiles / f"{self.profile.name}.yaml"), self.tenant.slug
        )

    @property
    def emulator_dir(self) -> Path:
        """Where the emulator profile's local BigQuery keeps its tables (beside the DuckDB file's folder)."""
        return self.paths.root / "data" / "bqemulator"

    @property
    def warehouse_path(self) -> Path:
        override = os.environ.get(WAREHOUSE_ENV)
        return Path(self.for_org(override)) if override else self.paths.root / self.for_org(self.duckdb.path)

    @property
    def warehouse_shown(self) -> str:
        """The warehouse as messages name it: the DuckDB file, or the BigQuery datasets."""
        if self.on_bigquery:
            return f"BigQuery {self.bigquery.project}.{self.bigquery.dataset_prefix}_*"
        return self.paths.relative(self.warehouse_path)

    @property
    def sources_dir(self) -> Path:
        return self.paths.root / self.for_org(self.profile.sources_dir)

    def for_org(self, template: str) -> str:
        """A profile path with this organisation's slug in place of {org}."""
        return template.replace(ORG_PLACEHOLDER, self.tenant.slug)

    @cached_property
    def partition_keys(self) -> list[str]:
        years = self.tenant.fiscal_years
        return [p.key for p in self.calendar.periods(years.first, years.last)]

    def check_period(self, key: str) -> str:
        """Return `key` if it names a configured period; else a `UsageError` naming the tenant file."""
        self.calendar.period(key)  # malformed keys fail here with their own message
        if key not in set(self.partition_keys):
            years = self.tenant.fiscal_years
            raise UsageError(
                f"period {key} is outside the configured fiscal years {years.first}..{years.last} "
                f"(resources/tenants/{self.tenant.slug}.yaml: fiscal_years)"
            )
        return key


def available_profiles(paths: ProjectPaths) -> list[str]:
    return sorted(p.stem for p in paths.profiles.glob("*.yaml"))


def available_orgs(paths: ProjectPaths) -> list[str]:
    """The organisations of the deployment: one tenant file each."""
    return sorted(p.stem for p in paths.tenants.glob("*.yaml"))


def load_tenant(paths: ProjectPaths, org: str) -> Tenant:
    """`resources/tenants/<org>.yaml`, checked; an unknown org is a `UsageError` listing the known ones."""
    tenant_file = paths.tenants / f"{org}.yaml"
    if not tenant_file.is_file():
        raise UsageError(f"unknown organisation '{org}'; known: {', '.join(available_orgs(paths)) or 'none'}")
    shown = paths.relative(tenant_file)
    tenant = parse_spec(tenant_file, Tenant, shown)
    if tenant.slug != org:
        raise SpecErrors.single(shown, "slug", f"'{tenant.slug}' does not match the file name '{org}'")
    return tenant


def load_settings(paths: ProjectPaths, profile_name: str | None = None, org: str | None = None) -> Settings:
    """Read the profile named by the argument, else `BARECOUNT_PROFILE`, else `local`, and the organisation named
    by the argument, else `BARECOUNT_ORG`, else the profile's `tenant`."""
    name = profile_name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    profile_file = paths.profiles / f"{name}.yaml"
    if not profile_file.is_file():
        known = ", ".join(available_profiles(paths)) or "none"
        raise UsageError(f"unknown profile '{name}' ({PROFILE_ENV}); known profiles: {known}")
    shown = paths.relative(profile_file)
    profile = parse_spec(profile_file, Profile, shown)
    if profile.name != name:
        raise SpecErrors.single(shown, "name", f"'{profile.name}' does not match the file name '{name}'")
    org = org or os.environ.get(ORG_ENV)
    if not org and not (paths.tenants / f"{profile.tenant}.yaml").is_file():
        missing = paths.relative(paths.tenants / f"{profile.tenant}.yaml")
        raise SpecErrors.single(shown, "tenant", f"no tenant file {missing}")
    return Settings(paths=paths, profile=profile, tenant=load_tenant(paths, org or profile.tenant))

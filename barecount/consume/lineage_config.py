"""Whether and where OpenLineage events go, decided without importing the `openlineage-python` client (its
import takes about 0.6 s, which a run that emits nothing should not pay), and what each asset's job is."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from barecount.catalog.loader import ProjectSpecs
from barecount.config.project import ProjectPaths

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient

CLIENT_LOGGER = "openlineage.client.client"
CONFIG_FILE = "openlineage.yml"


def lineage_configured() -> bool:
    """Whether the deployment configured the client the ways it reads: its variables (OPENLINEAGE__TRANSPORT__*,
    OPENLINEAGE_URL, OPENLINEAGE_CONFIG) or an `openlineage.yml` in the working directory or ~/.openlineage."""
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
        return True
    if any(name.startswith("OPENLINEAGE__TRANSPORT") for name in os.environ):
        return True
    return any(p.is_file() for p in (Path.cwd() / CONFIG_FILE, Path.home() / ".openlineage" / CONFIG_FILE))


def lineage_client() -> OpenLineageClient | None:
    """The client as the deployment configured it, or None when nothing is configured (then nothing is emitted:
    the client's own fallback would print every event to the console)."""
    if not lineage_configured():
        return None
    from openlineage.client import OpenLineageClient

    quiet = logging.getLogger(CLIENT_LOGGER)
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its "no configuration, printing to the console" warning: we print nothing
    try:
        client = OpenLineageClient()
    finally:
        quiet.setLevel(level)
    configured = bool(client.config.transport and client.config.transport.get("type")) or bool(
        os.environ.get("OPENLINEAGE_URL")
    )
    return client if configured and client.transport.kind != "noop" else None


@dataclass(frozen=True)
class AssetJob:
    """What the job of an asset is: its SQL (a model or KPI) and the file that declares it."""

    sql: str | None
    declared_in: Path


def lineage_jobs(paths: ProjectPaths, specs: ProjectSpecs) -> dict[str, AssetJob]:
    """Each asset's job: a stream's file, a model's or KPI's SQL and SQL file, a publication's KPI file."""
    jobs = {s.asset_ref: AssetJob(None, paths.root / s.file) for s in specs.streams}
    for item in (*specs.models, *specs.kpis):
        jobs[item.asset_ref] = AssetJob(item.sql, paths.root / item.sql_file)
        if item.publishes:
            jobs[f"published/{item.name}"] = AssetJob(None, paths.root / item.spec_file)
    return jobs

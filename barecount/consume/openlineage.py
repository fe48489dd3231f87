"""OpenLineage events for every asset a run builds, one child run per asset and fiscal period, so that each event
carries its own period (nominalTime), rows (outputStatistics) and gate verdicts (dataQualityAssertions).

Events go through the `openlineage-python` client, configured as deployments configure it: its `openlineage.yml`
(OPENLINEAGE_CONFIG, the working directory, ~/.openlineage) or its environment variables (OPENLINEAGE__TRANSPORT__*,
OPENLINEAGE_URL). Without any of them nothing is emitted, not even to the console. What a terminal event says is
read from the evidence the run left (its ledger entries and gate results), so it is what the ledger says. Emitting
never fails a run: a transport that fails is logged as a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
    source_code_location_job,
    sql_job,
)
from openlineage.client.uuid import generate_new_uuid

from barecount.calendar import FiscalCalendar
from barecount.config.profiles import Settings
from barecount.consume.lineage_config import AssetJob
from barecount.evidence import GATE_RESULTS_TABLE, evidence_table_exists
from barecount.evidence.holds import HELD_KINDS
from barecount.evidence.ledger import read_entries
from barecount.warehouse.catalog import table_columns
from barecount.warehouse.connection import Connection

log = logging.getLogger("barecount.openlineage")

PRODUCER = "urn:barecount"
"""The events' producer: BareCount (a URN, as the spec allows any URI)."""
DONE_KINDS = ("materialization", "noop")


@dataclass(frozen=True)
class DatasetNames:
    """Datasets named per the OpenLineage naming spec: DuckDB `duckdb://<file>` and `<catalog>.<schema>.<table>`;
    BigQuery `bigquery` and `<project>.<dataset>.<table>`; source files `file` and their path."""

    namespace: str
    table_name: Callable[[str, str], str]
    """(layer, table) -> the dataset's name."""
    sources_dir: Path

    @classmethod
    def duckdb(cls, database: Path, sources_dir: Path) -> DatasetNames:
        catalog = database.stem
        return cls(f"duckdb://{database.resolve()}", lambda layer, table: f"{catalog}.{layer}.{table}", sources_dir)

    @classmethod
    def bigquery(cls, project: str, dataset_of: Callable[[str], str], sources_dir: Path) -> DatasetNames:
        return cls("bigquery", lambda layer, table: f"{project}.{dataset_of(layer)}.{table}", sources_dir)

    def of(self, asset: str) -> tuple[str, str]:
        layer, table = asset.split("/")
        return self.namespace, self.table_name(layer, table)


def dataset_names(settings: Settings) -> DatasetNames:
    """The profile's warehouse as OpenLineage names it (BigQuery's values are read from the environment now)."""
    if settings.on_bigquery:
        target = settings.bigquery
        return DatasetNames.bigquery(
            target.project, lambda layer: f"{target.dataset_prefix}_{layer}", settings.sources_dir
        )
    return DatasetNames.duckdb(settings.warehouse_path, settings.sources_dir)


@dataclass
class RunLineage:
    """The lineage of one Dagster run: START when an asset's work begins, a terminal event per period when it
    ends. `parent_run_id`/`parent_job` are the Dagster run and its job; child runs are named `<org>.<asset>`."""

    client: OpenLineageClient
    org: str
    parent_run_id: str
    parent_job: str
    names: DatasetNames
    calendar: FiscalCalendar
    jobs: Mapping[str, AssetJob]
    started: dict[str, tuple[datetime, dict[str | None, str]]] = field(default_factory=dict)
    """Asset -> when its work began, and its child run id per period."""

    @property
    def namespace(self) -> str:
        return f"barecount/{self.org}"

    def _emit(self, event: RunEvent) -> None:
        try:
            self.client.emit(event)
        except Exception as exc:  # lineage is worth less than the run: say so and go on
            log.warning("OpenLineage event for %s not emitted: %s: %s", event.job.name, type(exc).__name__, exc)

    def _job(self, asset: str, described: bool) -> Job:
        """The asset's job; `described` (START) adds its source-code location and SQL, which consumers keep with
        the run: the terminal event need not repeat them."""
        facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="BARECOUNT", jobType="ASSET")
        }
        job = self.jobs.get(asset)
        if job is not None and described:
            facets["sourceCodeLocation"] = source_code_location_job.SourceCodeLocationJobFacet(
                type="file", url=job.declared_in.resolve().as_uri(), path=str(job.declared_in)
            )
            if job.sql:
                facets["sql"] = sql_job.SQLJobFacet(query=job.sql, dialect="duckdb")
        return Job(namespace=self.namespace, name=f"{self.org}.{asset.replace('/', '.')}", facets=facets)

    def _run(self, run_id: str, period: str | None, error: str | None = None) -> Run:
        facets: dict[str, Any] = {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=self.parent_run_id),
                job=parent_run.Job(namespace=self.namespace, name=self.parent_job),
            )
        }
        if period is not None:
            fiscal = self.calendar.period(period)
            end = datetime.combine(fiscal.end + timedelta(days=1), time(), UTC)
            facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=datetime.combine(fiscal.start, time(), UTC).isoformat(),
                nominalEndTime=end.isoformat(),
            )
        if error is not None:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(message=error, programmingLanguage="python")
        return Run(runId=run_id, facets=facets)

    def start(self, asset: str, periods: Sequence[str | None]) -> None:
        """START for each period of `asset` (None: a snapshot) as its work begins."""
        try:
            self._start(asset, periods)
        except Exception as exc:  # lineage never fails a run
            log.warning("OpenLineage START of %s not emitted: %s: %s", asset, type(exc).__name__, exc)

    def finish(self, conn: Connection, asset: str, dagster_run_id: str, error: str | None = None) -> None:
        """The terminal event of each period of `asset` started in this run, from the evidence the run left:
        COMPLETE for a period built or found unchanged, FAIL for one held back (or the error of a step that
        failed), ABORT for one the run left without a word."""
        try:
            self._finish(conn, asset, dagster_run_id, error)
        except Exception as exc:  # lineage never fails a run
            log.warning("OpenLineage end of %s not emitted: %s: %s", asset, type(exc).__name__, exc)

    def _start(self, asset: str, periods: Sequence[str | None]) -> None:
        now = datetime.now(UTC)
        children = {period: str(generate_new_uuid()) for period in periods}
        self.started[asset] = (now, children)
        for period, run_id in children.items():
            self._emit(
                RunEvent(
                    eventType=RunState.START,
                    eventTime=now.isoformat(),
                    run=self._run(run_id, period),
                    job=self._job(asset, described=True),
                    producer=PRODUCER,
                    inputs=[],
                    outputs=[OutputDataset(*self.names.of(asset))],
                )
            )

    def _finish(self, conn: Connection, asset: str, dagster_run_id: str, error: str | None) -> None:
        if asset not in self.started:
            return
        _, children = self.started.pop(asset)
        entries = read_entries(conn, asset=asset, run_id=dagster_run_id)  # type: ignore[arg-type]
        latest = {e.partition: e for e in entries if e.kind in (*DONE_KINDS, *HELD_KINDS)}
        verdicts = _verdicts(conn, asset, dagster_run_id)
        columns = table_columns(conn, *asset.split("/")) or []
        schema = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.type) for c in columns]
        )
        now = datetime.now(UTC).isoformat()
        newest = list(children)[-1]  # the periods come in calendar order
        for period, run_id in children.items():
            entry = latest.get(period)
            why = error
            if entry is None:
                state = RunState.FAIL if error else RunState.ABORT
            elif entry.kind in DONE_KINDS:
                state = RunState.COMPLETE
            else:
                state, why = RunState.FAIL, str(entry.facts.get("reason") or entry.kind)
            facts = dict(entry.facts) if entry is not None else {}
            # the table's schema is one for all its periods: on the newest period's event only (every period's
            # copy was most of what emitting cost: about 0.9 ms an event to serialise 25 columns)
            output_facets: dict[str, Any] = {"schema": schema} if period == newest else {}
            if period in verdicts:
                output_facets["dataQualityAssertions"] = (
                    data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                        assertions=[
                            data_quality_assertions_dataset.Assertion(assertion=gate, success=passed, severity="error")
                            for gate, passed in verdicts[period]
                        ]
                    )
                )
            rows = facts.get("rows_landed", facts.get("rows"))
            statistics = (
                {
                    "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                        rowCount=int(rows)
                    )
                }
                if entry is not None and entry.kind == "materialization" and rows is not None
                else None
            )
            self._emit(
                RunEvent(
                    eventType=state,
                    eventTime=now,
                    run=self._run(run_id, period, why if state != RunState.COMPLETE else None),
                    job=self._job(asset, described=False),
                    producer=PRODUCER,
                    inputs=self._inputs(facts),
                    outputs=[OutputDataset(*self.names.of(asset), facets=output_facets, outputFacets=statistics or {})],
                )
            )

    def _inputs(self, facts: Mapping[str, Any]) -> list[InputDataset]:
        """What the period was built from: the input assets its ledger entry names, and the source files read."""
        found = [InputDataset(*self.names.of(asset)) for asset in sorted(dict(facts.get("inputs", {})))]
        found += [
            InputDataset("file", str(self.names.sources_dir / str(f["path"])))
            for f in facts.get("source_files_read", [])
            if isinstance(f, Mapping) and f.get("path")
        ]
        return found


def _verdicts(conn: Connection, asset: str, run_id: str) -> dict[str | None, list[tuple[str, bool]]]:
    """Period -> (gate, passed) of each gate the run judged it by."""
    if not evidence_table_exists(conn, "gate_results"):  # type: ignore[arg-type]
        return {}
    rows = conn.execute(
        f"SELECT partition, gate, arg_max(passed, checked_at) FROM {GATE_RESULTS_TABLE} "
        "WHERE asset = ? AND run_id = ? GROUP BY ALL ORDER BY ALL",
        [asset, run_id],
    ).fetchall()
    found: dict[str | None, list[tuple[str, bool]]] = {}
    for period, gate, passed in rows:
        found.setdefault(None if period is None else str(period), []).append((str(gate), bool(passed)))
    return found

"""OpenLineage events from a run: one START and one terminal event per asset and period, each valid against the
OpenLineage spec's JSON Schema (kept in tests/fixtures/openlineage with its version), with the period's nominalTime,
the gate verdicts and the Dagster run as parent; a drift-blocked period FAILs. Nothing is configured: nothing is
emitted. A transport that fails does not fail the run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.consume.lineage_config import lineage_client
from barecount.devtools.sample_data import generate_sample_data
from tests.cli import barecount
from tests.conftest import TEST_SCALE

pytestmark = pytest.mark.long

SCHEMAS = Path(__file__).parents[1] / "fixtures" / "openlineage"
TERMINAL = {"COMPLETE", "FAIL", "ABORT"}


def _validators() -> tuple[Draft202012Validator, dict[str, Draft202012Validator]]:
    """The RunEvent schema, and one validator per facet schema by the facet's name in an event."""
    resources = {p.stem: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    registry = Registry().with_resources((r["$id"], Resource.from_contents(r)) for r in resources.values())
    core = resources.pop("OpenLineage")
    event = Draft202012Validator({"$ref": f"{core['$id']}#/$defs/RunEvent"}, registry=registry)
    facets = {}
    for schema in resources.values():
        for name in schema["properties"]:  # a facet file names the key the facet takes in an event
            facets[name] = Draft202012Validator({"$ref": f"{schema['$id']}#/properties/{name}"}, registry=registry)
    return event, facets


def _facets(event: dict[str, object]) -> list[tuple[str, object]]:
    run, job = event["run"], event["job"]
    found = [*run.get("facets", {}).items(), *job.get("facets", {}).items()]  # type: ignore[union-attr]
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:  # type: ignore[misc]
        found += [*dataset.get("facets", {}).items(), *dataset.get("outputFacets", {}).items()]
    return found


def test_a_run_emits_valid_events_per_asset_and_period_and_a_blocked_period_fails(
    own_sources: tuple[ProjectPaths, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, sources = own_sources
    calendar = load_settings(paths).calendar
    newest = generate_sample_data(sources, TEST_SCALE, seed=0, calendar=calendar, drift=True).last_period
    before = calendar.previous(newest).key
    events_file = tmp_path / "lineage" / "events.jsonl"
    events_file.parent.mkdir()
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(events_file))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    ran = barecount("run", "--from", before, "--to", newest)
    assert ran.returncode == 1, ran.stdout + ran.stderr  # the drifted period is held back
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    assert events

    event_schema, facet_schemas = _validators()
    for event in events:
        event_schema.validate(event)
        for name, facet in _facets(event):
            if name in facet_schemas:
                facet_schemas[name].validate(facet)
    assert {"nominalTime", "parent", "jobType", "sourceCodeLocation", "sql", "schema", "outputStatistics",
            "dataQualityAssertions", "errorMessage"} <= {name for e in events for name, _ in _facets(e)}  # fmt: skip

    # one START and one terminal event per child run (an asset and a period)
    by_run: dict[str, list[dict[str, object]]] = {}
    for event in events:
        by_run.setdefault(event["run"]["runId"], []).append(event)
    for run_events in by_run.values():
        kinds = Counter(e["eventType"] for e in run_events)
        assert kinds["START"] == 1 and sum(kinds[k] for k in TERMINAL) == 1, run_events
    dagster_runs = {e["run"]["facets"]["parent"]["run"]["runId"] for e in events}
    assert len(dagster_runs) >= 1 and all(len(r) == 36 for r in dagster_runs)

    def ended(job: str, period: str) -> dict[str, object]:
        (found,) = [
            e for e in events
            if e["eventType"] in TERMINAL and e["job"]["name"] == f"acme.{job}"
            and e["run"]["facets"]["nominalTime"]["nominalStartTime"].startswith(str(calendar.period(period).start))
        ]  # fmt: skip
        return found

    # the drifted period: raw.orders FAILs with why, and what is built from it is held back too
    blocked = ended("raw.orders", newest)
    assert blocked["eventType"] == "FAIL"
    assert "erp.orders" in blocked["run"]["facets"]["errorMessage"]["message"]
    assert ended("gdp.order_lines", newest)["eventType"] == "FAIL"
    # the clean period completes, with its rows, its source files and its gates' verdicts
    landed = ended("raw.orders", before)
    assert landed["eventType"] == "COMPLETE"
    (output,) = landed["outputs"]
    assert output["namespace"].startswith("duckdb://") and output["name"].endswith(".raw.orders")
    assert output["outputFacets"]["outputStatistics"]["rowCount"] > 0
    assert any(i["namespace"] == "file" and i["name"].endswith(f"{before}.parquet") for i in landed["inputs"])
    assertions = output["facets"]["dataQualityAssertions"]["assertions"]
    assert {a["assertion"] for a in assertions} >= {"conforms_to_contract", "rows_accounted"} and all(
        a["success"] for a in assertions
    )
    kpi = ended("kpi.net_revenue", before)
    assert kpi["eventType"] == "COMPLETE"
    (started,) = [e for e in events if e["run"]["runId"] == kpi["run"]["runId"] and e["eventType"] == "START"]
    assert "SELECT" in started["job"]["facets"]["sql"]["query"].upper()
    assert started["job"]["facets"]["sourceCodeLocation"]["url"].startswith("file://")
    assert {i["name"].split(".", 1)[1] for i in kpi["inputs"]} == {"gdp.order_lines"}

    # a transport that fails is a warning, not a failed run: the second run ends as the first did
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(tmp_path / "not-a-dir" / "x" / "events.jsonl"))
    (tmp_path / "not-a-dir").write_text("a file where a folder would be")
    again = barecount("run", "--from", before, "--to", newest)
    assert again.returncode == 1 and "Traceback" not in again.stdout + again.stderr, again.stdout + again.stderr


def test_without_configuration_nothing_is_emitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("OPENLINEAGE"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert lineage_client() is None
    (tmp_path / "openlineage.yml").write_text(f"transport:\n  type: file\n  log_file_path: {tmp_path / 'e.jsonl'}\n")
    configured = lineage_client()
    assert configured is not None and configured.transport.kind == "file"

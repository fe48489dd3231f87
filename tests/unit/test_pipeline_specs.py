"""Pipelines as YAML: the shipped ones load; a broken one names its file, line, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from barecount.catalog.pipelines import load_pipelines, step_selection
from barecount.config.project import ProjectPaths
from barecount.errors import SpecErrors, UsageError
from barecount.specs.pipeline import resolve_template
from tests.conftest import copy_project

BROKEN = """pipeline_id: broken
name: Broken
provider: tpch
domain: sales
version: 1.0
run_tags: {owner: "${owner}"}
steps:
  - step_id: kpis
    ps_type: kpi.compute
  - step_id: publish
    ps_type: publish
    depends_on: [later]
"""


def test_the_shipped_pipelines_load(repo_paths: ProjectPaths) -> None:
    pipelines = load_pipelines(repo_paths)
    assert set(pipelines) == {"tpch/finance/close_period", "tpch/finance/net_revenue"}
    close = pipelines["tpch/finance/close_period"].spec
    assert [s.ps_type for s in close.steps] == ["raw.ingest", "gdp.build", "kpi.build", "publish"]
    assert close.steps[0].retry.max_attempts == 3 and close.steps[3].depends_on == ["kpis"]


def test_a_broken_pipeline_names_each_problem(tmp_path: Path) -> None:
    paths = copy_project(tmp_path / "project")
    (paths.pipelines / "tpch" / "finance" / "broken.yml").write_text(BROKEN)
    with pytest.raises(SpecErrors) as raised:
        load_pipelines(paths)
    said = str(raised.value)
    assert "pipelines/tpch/finance/broken.yml:5:1: version: Input should be a valid string (got 1.0)" in said, said
    assert "broken.yml:6:12: run_tags.owner: unknown template variable ${owner} (known: {org_slug}, ${end_date}" in said
    assert "broken.yml:9:5: steps[0].ps_type: Input should be 'raw.ingest', 'gdp.build', 'kpi.build' or" in said, said


def test_steps_follow_their_order_and_their_folder(tmp_path: Path) -> None:
    paths = copy_project(tmp_path / "project")
    text = BROKEN.replace("version: 1.0", "version: 1.0.0").replace('"${owner}"', '"{org_slug}"')
    broken = paths.pipelines / "tpch" / "finance" / "broken.yml"
    broken.write_text(text.replace("kpi.compute", "kpi.build"))
    with pytest.raises(SpecErrors) as raised:
        load_pipelines(paths)
    said = str(raised.value)
    assert "broken.yml:7:1: steps: step 'publish' depends on 'later', which is not a step listed before it" in said
    broken.write_text(text.replace("kpi.compute", "kpi.build").replace("[later]", "[kpis]"))
    with pytest.raises(SpecErrors) as raised:
        load_pipelines(paths)
    assert "broken.yml:4:1: domain: 'sales' does not match the folder 'finance'" in str(raised.value)


def test_a_step_builds_its_own_layers_only(repo_paths: ProjectPaths) -> None:
    step = load_pipelines(repo_paths)["tpch/finance/net_revenue"].spec.steps[0]
    known = ["raw/orders", "gdp/order_lines", "kpi/net_revenue", "kpi/order_count", "published/net_revenue"]
    assert step_selection(step, known, lambda patterns: ["kpi/net_revenue"]) == ["kpi/net_revenue"]
    wide = step.model_copy(update={"config": step.config.model_copy(update={"select": None})})
    assert step_selection(wide, known, lambda patterns: []) == ["kpi/net_revenue", "kpi/order_count"]
    with pytest.raises(UsageError, match=r"step compute \(kpi\.build\) selects gdp/order_lines: it builds kpi"):
        step_selection(step, known, lambda patterns: ["gdp/order_lines", "kpi/net_revenue"])


def test_template_variables_resolve_per_run() -> None:
    values = {"org_slug": "acme", "start_date": "2024-02-04", "end_date": "2024-03-02"}
    assert resolve_template("{org_slug}-finance ${start_date}..${end_date}", values) == (
        "acme-finance 2024-02-04..2024-03-02"
    )

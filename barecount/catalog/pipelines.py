"""Loads `pipelines/<provider>/<domain>/<pipeline>.yml`: every file checked, every problem reported at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from barecount.config.project import ProjectPaths
from barecount.errors import SpecError, SpecErrors, UsageError
from barecount.specs.pipeline import PROCESSOR_LAYERS, PipelineSpec, PipelineStep
from barecount.yaml_source import load_yaml, parse_spec

PIPELINE_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class LoadedPipeline:
    """A pipeline file: its spec, where it is, and its name in the service's URLs (the file's stem)."""

    spec: PipelineSpec
    file: str
    name: str

    @property
    def path(self) -> str:
        """`provider/domain/pipeline`, as the service's URLs name it."""
        return f"{self.spec.provider}/{self.spec.domain}/{self.name}"


def load_pipelines(paths: ProjectPaths) -> dict[str, LoadedPipeline]:
    """Every pipeline by its `provider/domain/pipeline` path; `SpecErrors` with every problem found."""
    loaded: dict[str, LoadedPipeline] = {}
    errors: list[SpecError] = []
    files = sorted(p for p in paths.pipelines.rglob("*") if p.suffix in PIPELINE_SUFFIXES and p.is_file())
    ids: dict[str, str] = {}
    for file in files:
        shown = paths.relative(file)
        parts = file.relative_to(paths.pipelines).parts
        if len(parts) != 3:
            errors.append(SpecError(shown, 0, 0, "", "a pipeline goes at pipelines/<provider>/<domain>/<pipeline>.yml"))
            continue
        try:
            spec = parse_spec(file, PipelineSpec, shown)
        except SpecErrors as exc:
            errors.extend(exc.errors)
            continue
        _, positions = load_yaml(file, shown)
        for field, folder in (("provider", parts[0]), ("domain", parts[1])):
            if getattr(spec, field) != folder:
                line, column = positions.get((field,), (0, 0))
                reason = f"'{getattr(spec, field)}' does not match the folder '{folder}'"
                errors.append(SpecError(shown, line, column, field, reason))
        if spec.pipeline_id in ids:
            line, column = positions.get(("pipeline_id",), (0, 0))
            reason = f"'{spec.pipeline_id}' is also the id of {ids[spec.pipeline_id]}"
            errors.append(SpecError(shown, line, column, "pipeline_id", reason))
        ids.setdefault(spec.pipeline_id, shown)
        pipeline = LoadedPipeline(spec, shown, file.stem)
        loaded[pipeline.path] = pipeline
    if errors:
        raise SpecErrors(errors)
    return loaded


Resolver = Callable[[list[str]], list[str]]
"""`--select` patterns -> asset refs, in graph order (`barecount.defs.runner.resolve_selection` over a location)."""


def step_selection(step: PipelineStep, known: Sequence[str], resolve: Resolver) -> list[str]:
    """The assets a step builds: its `select` patterns resolved (else every asset of its layers, from `known`);
    a `UsageError` if it names an asset of another layer than its processor's."""
    layers = PROCESSOR_LAYERS[step.ps_type]
    if step.config.select is None:
        return [ref for ref in known if ref.split("/", 1)[0] in layers]
    chosen = resolve(step.config.select)
    foreign = [ref for ref in chosen if ref.split("/", 1)[0] not in layers]
    if foreign:
        raise UsageError(
            f"step {step.step_id} ({step.ps_type}) selects {', '.join(foreign)}: it builds {', '.join(layers)} assets"
        )
    return chosen


def selection_problems(
    paths: ProjectPaths, pipelines: Mapping[str, LoadedPipeline], known: Sequence[str], resolve: Resolver
) -> list[SpecError]:
    """Steps whose selection does not resolve, or names assets of another layer than its processor's."""
    problems = []
    for pipeline in pipelines.values():
        _, positions = load_yaml(paths.root / pipeline.file, pipeline.file)
        for index, step in enumerate(pipeline.spec.steps):
            try:
                step_selection(step, known, resolve)
            except UsageError as exc:
                line, column = positions.get(("steps", index, "config", "select"), (0, 0))
                problems.append(SpecError(pipeline.file, line, column, f"steps[{index}].config.select", str(exc)))
    return problems

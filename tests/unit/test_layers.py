"""The layers of `barecount/` as the code has them: each top-level folder imports only the ones below it.

Every module is parsed (never imported) and each of its imports of `barecount.<entry>...` is mapped to that
top-level entry: imports at module level, inside functions and under `TYPE_CHECKING` alike, since a lazy
import that points up is a cycle waiting for its first caller.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "barecount"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "yaml_source"),
    ("specs",),
    ("calendar",),
    ("sql",),
    ("config",),
    ("warehouse",),
    ("contracts",),
    ("evidence",),
    ("catalog",),
    ("pipeline",),
    ("consume",),
    ("defs",),
    ("devtools",),
    ("service",),
    ("cli",),
)
"""Bottom first: exceptions and YAML parsing; the spec models; the fiscal calendar; SQL builders; paths,
profiles and the Dagster instance; the warehouse client; the contract registry; the evidence tables; the
project catalog; the Dagster-free services; what takes numbers out (exports, the dataset catalog, lineage
events); the Dagster adapter; sample data, scenarios and the benchmark;
the HTTP service; the command line."""

LAYER = {entry: i for i, layer in enumerate(LAYERS) for entry in layer}
DEFS = LAYER["defs"]

DAGSTER_BELOW_DEFS = frozenset(
    {"barecount.config.instance", "barecount.config.event_storage", "barecount.config.dead_runs"}
)
"""The only modules below `defs/` that import Dagster: the Dagster instance the CLI opens, its event log
storage and the failing of runs whose process died when it is opened, which are configuration (DESIGN puts
them in `config/`). Nothing else below `defs/` does."""


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, e.g. `barecount.pipeline.land`."""
    target: str
    """What it imports, e.g. `barecount.evidence.ledger` or `dagster`."""
    names: tuple[str, ...]
    """The names of a `from` import (some may be submodules of `target`)."""
    line: int
    module_level: bool
    """At module level and outside `if TYPE_CHECKING:`: executed when the module is imported."""

    @property
    def entry(self) -> str:
        return self.module.split(".")[1]

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[tuple[str, tuple[str, ...]]]:
    if isinstance(node, ast.Import):
        yield from ((alias.name, ()) for alias in node.names)
        return
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    if source == "barecount":  # `from barecount import x`: each name is a module of its own
        yield from ((f"barecount.{alias.name}", ()) for alias in node.names)
    else:
        yield source, tuple(alias.name for alias in node.names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(nodes: list[ast.AST], module: str, is_package: bool, module_level: bool) -> Iterator[Import]:
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target, names in _targets(node, module, is_package):
                yield Import(module, target, names, node.lineno, module_level)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _walk(node.body, module, is_package, False)
            yield from _walk(node.orelse, module, is_package, module_level)
        else:
            runs_on_import = module_level and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from _walk(list(ast.iter_child_nodes(node)), module, is_package, runs_on_import)


def imports_in(source: str, module: str, is_package: bool = False) -> list[Import]:
    return list(_walk(ast.parse(source).body, module, is_package, True))


@cache
def all_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += imports_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    return tuple(found)


def barecount_imports(imports: tuple[Import, ...] | list[Import]) -> list[Import]:
    return [i for i in imports if i.target.startswith("barecount.") and i.module != "barecount"]


def target_entry(i: Import) -> str:
    return i.target.split(".")[1]


def is_dagster(name: str) -> bool:
    return name.split(".")[0].startswith("dagster")


def pointing_up(imports: tuple[Import, ...] | list[Import]) -> list[str]:
    """Imports of a higher layer (or of, or from, an entry that is no layer)."""
    unknown = len(LAYERS)
    return [
        f"{i} ({i.entry} is layer {LAYER.get(i.entry, '?')}, {target_entry(i)} is layer "
        f"{LAYER.get(target_entry(i), '?')})"
        for i in barecount_imports(imports)
        if LAYER.get(target_entry(i), unknown) > LAYER.get(i.entry, -1)
    ]


def dagster_below_defs(imports: tuple[Import, ...] | list[Import]) -> list[str]:
    return [
        str(i) for i in imports if is_dagster(i.target) and LAYER[i.entry] < DEFS and i.module not in DAGSTER_BELOW_DEFS
    ]


def test_the_top_level_entries_are_exactly_the_layers() -> None:
    entries = {
        p.name.removesuffix(".py")
        for p in PACKAGE.iterdir()
        if p.name != "__pycache__" and (p.suffix == ".py" or p.is_dir())
    }
    assert entries - {"__init__"} == set(LAYER), "barecount/ holds other entries than the layers of LAYERS"
    for entry in PACKAGE.iterdir():
        if entry.is_dir() and entry.name != "__pycache__":
            assert (entry / "__init__.py").is_file(), f"{entry.name}/ has no __init__.py"


def test_imports_point_down_the_layers() -> None:
    assert len(barecount_imports(all_imports())) > 300, "the parse found too few imports to be checking anything"
    up = pointing_up(all_imports())
    assert not up, "imports that point up the layers:\n" + "\n".join(up)


def test_no_import_cycle_between_top_level_entries() -> None:
    """Within one layer too (errors and yaml_source): top-level entries form no cycle."""
    edges: dict[str, set[str]] = {e: set() for e in LAYER}
    for i in barecount_imports(all_imports()):
        if target_entry(i) != i.entry:
            edges[i.entry].add(target_entry(i))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in edges[start])

    on_a_cycle = [e for e in LAYER if reaches(e, e, set())]
    assert not on_a_cycle, f"top-level entries on an import cycle: {on_a_cycle}"


def test_runtime_code_never_imports_devtools() -> None:
    """Sample data, scenarios and the benchmark are used by the CLI and the tests, never by a run."""
    found = [
        str(i) for i in barecount_imports(all_imports()) if target_entry(i) == "devtools" and LAYER[i.entry] <= DEFS
    ]
    assert not found


def test_nothing_below_defs_imports_dagster() -> None:
    found = dagster_below_defs(all_imports())
    assert not found, "Dagster imported below defs/:\n" + "\n".join(found)
    for module in DAGSTER_BELOW_DEFS:  # each exception is still needed: otherwise it goes from the list
        assert any(is_dagster(i.target) for i in all_imports() if i.module == module), module


def test_the_cli_does_not_reach_dagster_when_imported() -> None:
    """The CLI's modules, and everything their module-level imports load (package `__init__`s included),
    import no Dagster: a command imports it inside its function only when it launches a run."""
    executed: dict[str, list[Import]] = {}
    for i in all_imports():
        if i.module_level:
            executed.setdefault(i.module, []).append(i)
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}

    def loaded_by(i: Import) -> set[str]:
        """The module, the packages Python imports first to reach it, and the submodules among its names."""
        parts = i.target.split(".")
        found = {".".join(parts[:n]) for n in range(1, len(parts) + 1)} | {f"{i.target}.{n}" for n in i.names}
        return found & modules

    path: dict[str, str] = {}
    todo = [m for m in modules if m.startswith("barecount.cli")]
    for m in todo:
        path[m] = m
    while todo:
        module = todo.pop()
        for i in executed.get(module, ()):
            assert not is_dagster(i.target), f"importing the CLI imports Dagster: {path[module]} -> {i.target}"
            for loaded in loaded_by(i) - path.keys():
                path[loaded] = f"{path[module]} -> {loaded}"
                todo.append(loaded)
    assert {"barecount.config.project", "barecount.pipeline.tags"} <= path.keys(), "the walk found too little"


@pytest.mark.parametrize(
    "source",
    [
        "from barecount.defs.layers import RETRY_POLICY\n",
        "import barecount.cli.main\n",
        "from barecount import pipeline\n",
        "class Writer:\n    def write(self) -> None:\n        from barecount.pipeline import scope\n",
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from barecount.evidence import ledger\n",
    ],
    ids=["from-import", "import", "from barecount import", "inside a method", "under TYPE_CHECKING"],
)
def test_an_import_up_the_layers_is_caught_wherever_it_is(source: str) -> None:
    (found,) = pointing_up(imports_in(source, "barecount.sql.relation"))
    assert found.startswith("barecount.sql.relation:")


@pytest.mark.parametrize("source", ["import dagster as dg\n", "def f() -> None:\n    from dagster_duckdb import x\n"])
def test_dagster_below_defs_is_caught(source: str) -> None:
    assert dagster_below_defs(imports_in(source, "barecount.pipeline.land"))
    assert not dagster_below_defs(imports_in(source, "barecount.defs.layers"))

"""Load declarative YAML files into pydantic models, reporting errors at their line and column.

PyYAML's `compose()` keeps each node's position; pydantic reports each error's location as a
path of keys and indices. Mapping one onto the other lets every message name the file, the line,
the dotted field and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from barecount.errors import SpecError, SpecErrors

FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*): (.+)$", re.DOTALL)
ModelT = TypeVar("ModelT", bound=BaseModel)
Location = tuple[str | int, ...]


def _positions(node: yaml.Node, here: Location, out: dict[Location, tuple[int, int]]) -> None:
    out[here] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*here, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _positions(value_node, (*here, key), out)
            # a key's own position is more useful than its value's for "unknown field" errors
            out[(*here, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _positions(item, (*here, index), out)


def dotted(loc: Location) -> str:
    """`("periods", 2, "name")` -> `periods[2].name`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _position_of(loc: Location, positions: Mapping[Location, tuple[int, int]]) -> tuple[int, int]:
    for end in range(len(loc), -1, -1):
        if loc[:end] in positions:
            return positions[loc[:end]]
    return (1, 1)


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where the wheel has it: specs are read on every run and every CLI call."""


def load_yaml(path: Path, display: str | None = None) -> tuple[Any, dict[Location, tuple[int, int]]]:
    """Parse one YAML file; return its data and the position of every key and item."""
    shown = display or str(path)
    return parse_yaml(read_text(path, shown), shown)


def read_text(path: Path, shown: str) -> str:
    """A YAML file's text; a missing file is a `SpecErrors` naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecErrors.single(shown, "", "file not found") from None


def parse_yaml(text: str, shown: str) -> tuple[Any, dict[Location, tuple[int, int]]]:
    """Parse YAML text (of the file `shown`); return its data and the position of every key and item."""
    try:
        node = yaml.compose(text, Loader=SAFE_LOADER)
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise SpecErrors.single(shown, "", f"not valid YAML: {exc.problem}", line, column) from None
    positions: dict[Location, tuple[int, int]] = {}
    if node is not None:
        _positions(node, (), positions)
    return data, positions


def _data_location(raw: Location, data: Any) -> Location:
    """pydantic's error location without the union tags it inserts (model names, discriminator values)."""
    loc: list[str | int] = []
    node = data
    for part in raw:
        if isinstance(part, str) and (part[:1].isupper() or part.startswith("function-")):
            continue
        if isinstance(node, dict) and isinstance(part, str) and part not in node and part in node.values():
            continue  # a discriminated union's tag is the value of its discriminator field
        loc.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(loc)


def validation_errors(
    exc: ValidationError, display: str, positions: Mapping[Location, tuple[int, int]], data: Any
) -> list[SpecError]:
    """Turn pydantic's errors into `SpecError`s that point at the YAML."""
    found = []
    for error in exc.errors():
        loc = _data_location(error["loc"], data)
        reason = error["msg"].removeprefix("Value error, ")
        # a cross-field rule names the field it is about as "field: reason"; point at that field
        named = FIELD_PREFIX.match(reason)
        if named and (*loc, named.group(1)) in positions:
            loc, reason = (*loc, named.group(1)), named.group(2)
        line, column = _position_of(loc, positions)
        if error["type"] == "extra_forbidden":
            reason = "unknown field"
        elif error["type"] == "missing":
            reason = "required field is missing"
        elif (
            "input" in error
            and error["type"] not in ("model_type", "dict_type")
            and not isinstance(error["input"], dict | list)
        ):
            reason = f"{reason} (got {error['input']!r})"
        found.append(SpecError(display, line, column, dotted(loc), reason))
    return found


def parse_spec(path: Path, model: type[ModelT], display: str | None = None) -> ModelT:
    """Load `path` as `model`; raise `SpecErrors` naming the file, line, field and reason."""
    shown = display or str(path)
    data, positions = load_yaml(path, shown)
    if data is None:
        raise SpecErrors.single(shown, "", "file is empty")
    try:
        return model.model_validate(data, context={"path": shown})
    except ValidationError as exc:
        raise SpecErrors(validation_errors(exc, shown, positions, data)) from None

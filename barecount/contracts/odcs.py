"""Read one contract file: the ODCS JSON Schema and pydantic model first, then BareCount's own rules."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from datetime import timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from open_data_contract_standard.model import CustomProperty, OpenDataContractStandard, SchemaProperty
from pydantic import ValidationError

from barecount.calendar.calendar import KEY_PATTERN
from barecount.contracts.contract import STATUSES, Contract, ContractColumn
from barecount.errors import SpecError, SpecErrors
from barecount.yaml_source import Location, dotted, parse_yaml, read_text, validation_errors

SUPPORTED_API_VERSIONS = ("v3.0.0", "v3.0.1", "v3.0.2", "v3.1.0")
PHYSICAL_TYPE = re.compile(
    r"^(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|REAL|FLOAT|DOUBLE|DATE|TIMESTAMP|TIME|VARCHAR|BLOB|"
    r"DECIMAL\(\d{1,2},\s?\d{1,2}\))$"
)
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def odcs_json_schema() -> dict[str, Any]:
    """The official ODCS v3 JSON Schema shipped with the open-data-contract-standard package."""
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


@cache
def _odcs_validator() -> jsonschema.Draft201909Validator:
    return jsonschema.Draft201909Validator(odcs_json_schema())


def _custom(props: list[CustomProperty] | None) -> dict[str, Any]:
    return {p.property: p.value for p in props or [] if p.property}


class _Problems:
    def __init__(self, display: str, positions: dict[Location, tuple[int, int]]) -> None:
        self.display, self.positions, self.errors = display, positions, list[SpecError]()

    def add(self, loc: Location, reason: str) -> None:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.positions:
                line, column = self.positions[loc[:end]]
                break
        else:
            line, column = 0, 0
        self.errors.append(SpecError(self.display, line, column, dotted(loc), reason))


def _column(p: _Problems, loc: Location, prop: SchemaProperty) -> ContractColumn | None:
    if not prop.name or not re.match(r"^[a-z][a-z0-9_]*$", prop.name):
        p.add((*loc, "name"), f"'{prop.name}' is not a lower-case column name")
        return None
    physical = (prop.physicalType or "").upper()
    if not PHYSICAL_TYPE.match(physical):
        p.add((*loc, "physicalType"), f"'{prop.physicalType}' is not a warehouse type BareCount knows")
        return None
    options = prop.logicalTypeOptions or {}
    valid_values = None
    for index, rule in enumerate(prop.quality or []):
        if rule.metric == "invalidValues" and rule.arguments and "validValues" in rule.arguments:
            valid_values = tuple(str(v) for v in rule.arguments["validValues"])
        elif rule.type != "text":
            p.add((*loc, "quality", index), "only library rules with metric invalidValues + validValues are enforced")
    references = None
    for rel in prop.relationships or []:
        if rel.type in (None, "foreignKey") and isinstance(rel.to, str):
            references = rel.to
    return ContractColumn(
        name=prop.name,
        source_name=prop.physicalName or prop.name,
        logical_type=prop.logicalType or "",
        physical_type=physical,
        required=bool(prop.required or prop.primaryKey),
        unique=bool(prop.unique),
        primary_key_position=(prop.primaryKeyPosition or 1) if prop.primaryKey else None,
        valid_values=valid_values,
        minimum=options.get("minimum"),
        maximum=options.get("maximum"),
        pattern=options.get("pattern"),
        references=references,
        pii=bool(_custom(prop.customProperties).get("pii")),
    )


def load_contract(path: Path, display: str, expected_id: str) -> Contract:
    """Validate `path` as ODCS v3 and as a BareCount contract; `SpecErrors` lists every problem."""
    return _contract_of(read_text(path, display), display, expected_id, path.stem)


@functools.lru_cache(maxsize=1024)
def _contract_of(text: str, display: str, expected_id: str, file_version: str) -> Contract:
    # keyed by the file's text: a run reads the registry in every step, the JSON Schema check is the slow part
    data, positions = parse_yaml(text, display)
    if not isinstance(data, dict):
        raise SpecErrors.single(display, "", "a contract is a YAML mapping")
    p = _Problems(display, positions)
    for error in _odcs_validator().iter_errors(data):
        p.add(tuple(error.absolute_path), f"ODCS: {error.message}")
    if p.errors:
        raise SpecErrors(p.errors)
    try:
        odcs = OpenDataContractStandard.model_validate(data)
    except ValidationError as exc:
        raise SpecErrors(validation_errors(exc, display, positions, data)) from None

    if odcs.apiVersion not in SUPPORTED_API_VERSIONS:
        p.add(("apiVersion",), f"'{odcs.apiVersion}' is not supported (use one of {', '.join(SUPPORTED_API_VERSIONS)})")
    if odcs.id != expected_id:
        p.add(("id",), f"'{odcs.id}' does not match its folder, which names '{expected_id}'")
    if odcs.version != file_version or not SEMVER.match(odcs.version or ""):
        p.add(("version",), f"'{odcs.version}' must be a semantic version equal to the file name '{file_version}'")
    if odcs.status not in STATUSES:
        p.add(("status",), f"'{odcs.status}' is not one of {', '.join(STATUSES)}")
    custom = _custom(odcs.customProperties)
    effective_from = str(custom.get("effective_from", ""))
    if not KEY_PATTERN.match(effective_from):
        p.add(
            ("customProperties",),
            "needs an 'effective_from' period key (e.g. FY1991-P01): the first period this version applies to",
        )
    columns: list[ContractColumn] = []
    if not odcs.schema_ or len(odcs.schema_) != 1 or not odcs.schema_[0].properties:
        p.add(("schema",), "needs exactly one schema object with properties (the stream's table)")
    else:
        for index, prop in enumerate(odcs.schema_[0].properties):
            column = _column(p, ("schema", 0, "properties", index), prop)
            if column is not None:
                columns.append(column)
        names = [c.name for c in columns]
        for name in sorted({n for n in names if names.count(n) > 1}):
            p.add(("schema", 0, "properties"), f"column '{name}' is declared twice")
    # latency: how long after a period ends its extract is due; retention: how long its raw rows are kept
    latency = _sla_duration(p, odcs, "latency", LATENCY_UNITS, "value: 3, unit: d")
    retention = _sla_duration(p, odcs, "retention", RETENTION_UNITS, "value: 7, unit: y")
    members = odcs.team.members if odcs.team and not isinstance(odcs.team, list) else odcs.team or []
    owners = tuple(m.username for m in members if m.username and (m.role or "").lower() in ("owner", "steward"))
    if p.errors:
        raise SpecErrors(p.errors)
    return Contract(
        id=expected_id,
        version=odcs.version or "",
        status=odcs.status,  # type: ignore[arg-type]
        effective_from=effective_from,
        columns=tuple(columns),
        owners=owners,
        file=display,
        # the content without its status: approving or deprecating a version does not change it
        content_hash=hashlib.sha256(
            json.dumps({k: v for k, v in data.items() if k != "status"}, sort_keys=True, default=str).encode()
        ).hexdigest(),
        partition_column=custom.get("partition_column"),
        privacy_level=custom.get("privacy_level"),
        latency=latency,
        retention=retention,
    )


LATENCY_UNITS = {"d": 24.0, "day": 24.0, "days": 24.0, "h": 1.0, "hour": 1.0, "hours": 1.0}
"""The units a latency SLA may be given in, in hours."""
RETENTION_UNITS = {"d": 24.0, "day": 24.0, "days": 24.0, "y": 8760.0, "year": 8760.0, "years": 8760.0}
"""The units a retention SLA may be given in, in hours (a year is 365 days)."""


def _sla_duration(
    p: _Problems, odcs: OpenDataContractStandard, name: str, units: dict[str, float], example: str
) -> timedelta | None:
    """The `slaProperties` entry `name` as a duration (e.g. value 3, unit d); None when the contract has none."""
    for index, sla in enumerate(odcs.slaProperties or []):
        if sla.property != name:
            continue
        hours = units.get(str(sla.unit or "").lower())
        if hours is None or not isinstance(sla.value, (int, float)) or isinstance(sla.value, bool) or sla.value < 0:
            p.add(
                ("slaProperties", index),
                f"{name} needs a number of {', '.join(units)} (e.g. {example}), got value "
                f"{sla.value!r} unit {sla.unit!r}",
            )
            return None
        return timedelta(hours=float(sla.value) * hours)
    return None

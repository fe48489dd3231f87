"""Field types shared by the spec models, and how a range rule of one reads."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, StringConstraints

SPEC_CONFIG = ConfigDict(extra="forbid", frozen=True)

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
"""A lower-case SQL-safe name: table, column, stream."""

AssetRef = Annotated[str, StringConstraints(pattern=r"^(raw|gdp|kpi|published|calendar)/[a-z][a-z0-9_]*$")]
"""An asset key as `<layer>/<name>`, e.g. `raw/orders`."""


def bounds(name: str, low: object | None, high: object | None) -> list[str]:
    """A range rule as a person reads it: `0 ≤ x ≤ 1`, `x ≥ 0`, `x ≤ 1`, or nothing without bounds."""
    if low is not None and high is not None:
        return [f"{low} ≤ {name} ≤ {high}"]
    if low is not None:
        return [f"{name} ≥ {low}"]
    return [f"{name} ≤ {high}"] if high is not None else []


def owner_ref(owner: str) -> str:
    """An owner as Dagster and the catalog show it: an e-mail address or `team:<name>`; anything else a team."""
    return owner if "@" in owner or owner.startswith("team:") else f"team:{owner}"

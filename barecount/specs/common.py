"""Field types shared by the spec models."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, StringConstraints

SPEC_CONFIG = ConfigDict(extra="forbid", frozen=True)

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
"""A lower-case SQL-safe name: table, column, stream."""

AssetRef = Annotated[str, StringConstraints(pattern=r"^(raw|gdp|kpi|published|calendar)/[a-z][a-z0-9_]*$")]
"""An asset key as `<layer>/<name>`, e.g. `raw/orders`."""

"""What every generated asset shares: keys, owners, code versions, links to the file that declared it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg

from barecount.project import ProjectPaths


def asset_key(ref: str) -> dg.AssetKey:
    """`raw/orders` -> AssetKey(["raw", "orders"])."""
    return dg.AssetKey(ref.split("/"))


def code_version(*parts: str) -> str:
    """A short hash of everything that defines what an asset computes."""
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()[:12]


def owners(owner: str) -> list[str]:
    """Dagster accepts e-mail addresses and `team:<name>`; anything else becomes a team."""
    return [owner if "@" in owner or owner.startswith("team:") else f"team:{owner}"]


def code_reference(paths: ProjectPaths, file: str, line: int = 1) -> dg.CodeReferencesMetadataValue:
    """A link from the asset in the UI to the file (and line) that declared it."""
    return dg.CodeReferencesMetadataValue(
        code_references=[dg.LocalFileCodeReference(file_path=str(paths.root / Path(file)), line_number=max(line, 1))]
    )

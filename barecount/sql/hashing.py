"""Short, stable hashes of what defines a piece of work (code versions, data versions)."""

import hashlib


def code_version(*parts: str) -> str:
    """A short hash of everything that defines what an asset computes."""
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()[:12]

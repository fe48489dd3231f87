"""Shared output helpers: one console for tables and progress, one for errors, JSON when asked."""

from __future__ import annotations

import json
import logging
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (every listing takes --json)."""
    print(json.dumps(data, indent=2, default=str))


def setup_logging() -> None:
    """BareCount's own warnings (e.g. waiting for a busy warehouse) go to stderr, readable."""
    handler = RichHandler(console=err, show_time=False, show_path=False)
    logger = logging.getLogger("barecount")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False

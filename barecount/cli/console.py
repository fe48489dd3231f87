"""Shared output helpers: one console for tables and progress, one for errors, JSON when asked; no
Dagster notices."""

from __future__ import annotations

import json
import logging
import warnings
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


class _DagsterNoticeType(type):
    """Matches Dagster's beta and preview warning classes by name, so filtering them needs no Dagster import."""

    NAMES = frozenset({"BetaWarning", "PreviewWarning"})

    def __subclasscheck__(cls, subclass: type) -> bool:
        return any(
            c.__name__ in cls.NAMES and c.__module__.partition(".")[0] in ("dagster", "dagster_shared")
            for c in getattr(subclass, "__mro__", ())
        )

    def __instancecheck__(cls, instance: object) -> bool:
        return cls.__subclasscheck__(type(instance))


class DagsterNotice(Warning, metaclass=_DagsterNoticeType):
    """`dagster.BetaWarning` and `dagster.PreviewWarning`, for `warnings` filters (which test `issubclass`)."""


def quiet_dagster_notices() -> None:
    """Dagster's beta/preview notices are for library authors: ignored, whenever Dagster gets imported."""
    warnings.filterwarnings("ignore", category=DagsterNotice)

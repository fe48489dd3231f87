"""Every command's help shows what to type (`--period PERIOD`, nothing after a flag), never a Python type, and
`--version` names the versions that matter."""

from __future__ import annotations

import re
import sys
from importlib.metadata import version
from typing import Any

import pytest
import typer

from barecount.cli.main import app, main


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        found += _paths(sub, (*prefix, name))
    return found


def _said(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    monkeypatch.setattr(sys, "argv", ["barecount", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0, args
    return capsys.readouterr().out


def test_no_help_shows_a_python_type_and_every_command_takes_a_profile(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = typer.main.get_command(app)
    paths = _paths(tree)
    assert len(paths) > 20
    for path in paths:
        shown = _said(monkeypatch, capsys, *path, "--help")
        assert not re.search(r"<(str|bool|int|float|list\[str\]|path)>", shown), (path, shown)
        if not hasattr(_command_at(tree, path), "commands"):
            assert "--profile NAME" in " ".join(shown.split()), path
    run_help = " ".join(_said(monkeypatch, capsys, "run", "--help").split())
    assert "--period PERIOD" in run_help and "--select ASSET" in run_help and "--force Rebuild" in run_help


def _command_at(tree: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        tree = tree.commands[name]
    return tree


def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    shown = _said(monkeypatch, capsys, "--version")
    assert (
        shown.strip() == f"barecount {version('barecount')} (dagster {version('dagster')}, duckdb {version('duckdb')})"
    )

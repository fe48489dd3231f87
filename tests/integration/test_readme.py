"""Every command block of the README, run in order in a fresh copy of the project, as a new user types them in
one shell: `make demo`, the UI, the scenarios, `reset`, and a clean demo again. Each command exits as its
comment says (`# exits N: why`), or 0.

Two commands are not run as typed: `make test` is this suite, and a command that serves until Ctrl-C
(`make ui`) is started, waited for until its workspace has loaded, and stopped."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

import pytest

from barecount.config.processes import free_port
from barecount.config.project import DAGSTER_HOME_ENV, PROJECT_ROOT_ENV, WAREHOUSE_ENV
from barecount.sql.pii import PII_KEY_ENV
from tests.conftest import REPO

pytestmark = pytest.mark.long

THE_SUITE = "make test"
SERVES_UNTIL_CTRL_C = "until Ctrl-C"
"""What the comment of a command that serves until stopped says."""
EXITS = re.compile(r"#.*\bexits (\d+)")
MARK = "@@readme-command"


@dataclass(frozen=True)
class Command:
    line: str
    expected_exit: int
    serves: bool


def readme_commands(readme: Path) -> list[Command]:
    """The lines of the README's ```bash blocks, in order, with the exit code each one's comment promises."""
    commands: list[Command] = []
    in_block = False
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```bash" if not in_block else False
            continue
        if not in_block or not line.strip() or line.lstrip().startswith("#"):
            continue
        expected = EXITS.search(line)
        commands.append(Command(line.strip(), int(expected.group(1)) if expected else 0, SERVES_UNTIL_CTRL_C in line))
    return commands


def _copy_of_the_project(target: Path) -> Path:
    """The project's files as a clone has them (mtimes kept, so make finds the virtualenv up to date), with
    this checkout's virtualenv."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO.root, capture_output=True, check=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO.root / name
        if source.is_file():  # a file deleted in the working tree is still listed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(REPO.root / ".venv")
    # make must find the shared virtualenv up to date even where this checkout's stamp is older than its
    # dependency files: a sync from the copy would point the checkout's editable install at the copy
    synced = (REPO.root / ".venv" / ".synced").stat().st_mtime_ns
    for name in ("pyproject.toml", "uv.lock"):
        os.utime(target / name, ns=(synced, synced))
    return target


SERVE_BRIEFLY = """
serve_briefly() {  # start a command that serves until Ctrl-C, wait until its workspace has loaded, stop it
  setsid "$@" > serve.log 2>&1 < /dev/null &
  local pid=$! loaded=1
  for _ in $(seq 240); do
    if curl -sf -X POST -H 'Content-Type: application/json' \\
        -d '{"query":"{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"}' \\
        "http://127.0.0.1:$UI_PORT/graphql" | grep -q '"LOADED"'; then loaded=0; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -TERM -- "-$pid" 2>/dev/null; wait "$pid"
  cat serve.log
  return $loaded
}
"""


def _script(commands: list[Command]) -> str:
    lines = ["set +e", SERVE_BRIEFLY]
    for number, command in enumerate(commands):
        run = f"serve_briefly {command.line.split('#')[0].strip()}" if command.serves else command.line
        lines += [f"echo {shlex.quote(f'{MARK} {number} start')}", f"{run} < /dev/null", f'echo "{MARK} {number} $?"']
    return "\n".join(lines) + "\n"


def test_every_readme_command_exits_as_the_readme_says(tmp_path: Path) -> None:
    commands = readme_commands(REPO.root / "README.md")
    assert any(c.line.startswith(THE_SUITE) for c in commands), "the README no longer shows `make test`"
    commands = [c for c in commands if not c.line.startswith(THE_SUITE)]  # this suite: it runs already
    assert [c.line.split()[:2] for c in commands[:1]] == [["make", "demo"]], commands[:1]
    assert any(c.serves for c in commands) and any(c.expected_exit for c in commands)

    project = _copy_of_the_project(tmp_path / "project")
    venv_bin = str(REPO.root / ".venv" / "bin")
    environment = {  # a new user's shell: nothing of this suite's project, key or virtualenv
        name: value
        for name, value in os.environ.items()
        if name
        not in {PROJECT_ROOT_ENV, DAGSTER_HOME_ENV, WAREHOUSE_ENV, PII_KEY_ENV, "VIRTUAL_ENV", "BARECOUNT_PROFILE"}
        and not name.startswith(("PYTEST_", "MAKE", "MFLAGS"))
    }
    environment["PATH"] = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    environment |= {"UI_PORT": str(free_port()), "COLUMNS": "120", "NO_COLOR": "1"}
    done = subprocess.run(
        ["bash", "-c", _script(commands)],
        cwd=project,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
    )

    outputs: dict[int, list[str]] = {}
    exits: dict[int, int] = {}
    current: list[str] = []
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            number, word = line.split()[1:3]
            if word == "start":
                current = outputs.setdefault(int(number), [])
            else:
                exits[int(number)] = int(word)
        else:
            current.append(line)
    wrong = [
        f"`{c.line}` exited {exits.get(n)}, the README says {c.expected_exit}:\n" + "\n".join(outputs.get(n, [])[-40:])
        for n, c in enumerate(commands)
        if exits.get(n) != c.expected_exit
    ]
    assert not wrong, "\n\n".join(wrong)
    installed = json.loads(distribution("barecount").read_text("direct_url.json") or "{}")
    assert installed.get("url") == REPO.root.as_uri(), f"the copy re-installed BareCount from itself: {installed}"

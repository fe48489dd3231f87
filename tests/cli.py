"""The `barecount` command run as users run it: a subprocess of this virtualenv's entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BARECOUNT = str(Path(sys.executable).with_name("barecount"))


def barecount(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    # stdin is no terminal, as in CI: a command that would ask first refuses instead
    return subprocess.run(
        [BARECOUNT, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )

"""What a process derives from files and the next process can read back instead: kept on disk as a pickle with
the state of the files it came from, and of BareCount's own code (the pickled classes are its own).

Every command starts by loading the project's specs (0.3 s) and contracts (0.15 s); unpickling them takes under a
millisecond. A changed file, or a changed line of BareCount, makes the next process derive them again.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
CODE = Path(__file__).parents[1]
KEPT = ".cache"
"""The folder, under the project's data folder, of what is kept."""


def files_state(*folders: Path) -> str:
    """A digest of every file's path and content under `folders`: any edit changes it, even one within the
    file system's timestamp granularity (57 files of 50 kB in the shipped project: a few milliseconds)."""
    digest = hashlib.sha256()
    for folder in folders:
        for file in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if file.is_file():
                digest.update(f"{file}\0{file.stat().st_size}\0".encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def _code_state() -> tuple[tuple[str, int, int], ...]:
    """BareCount's own modules by path, size and modification time: the pickled classes are theirs."""
    return tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(CODE.rglob("*.py")))


def kept(file: Path, state: object, derive: Callable[[], T]) -> T:
    """What `derive` returns for the files in `state`: read from `file` when it was kept there for that state,
    else derived and kept (an exception of `derive` keeps nothing)."""
    digest = hashlib.sha256(repr((state, _code_state())).encode()).digest()
    try:
        held = file.read_bytes()
        if held.startswith(digest):
            return pickle.loads(held[len(digest) :])  # type: ignore[no-any-return]
    except Exception:  # missing, or made by other versions of the classes: derive again
        pass
    value = derive()
    keep(file, digest + pickle.dumps(value))
    return value


def keep(file: Path, content: bytes) -> None:
    """Write `file` whole or not at all (a reader sees the old content or the new); a folder that cannot be
    written only means that nothing is kept."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(f"{file.name}.{os.getpid()}")
        partial.write_bytes(content)
        partial.replace(file)
    except OSError:
        pass

"""A local BigQuery for the `bigquery-emulator` profile and the tests: the PyPI `bqemulator`, started and stopped
by BareCount as a subprocess of its own environment (see `bqemulator_launcher`), reached through
`google-cloud-bigquery` with anonymous credentials."""

from __future__ import annotations

import atexit
import fcntl
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from barecount.config.processes import free_port, stop_process_group
from barecount.errors import UsageError

EMULATOR_PYTHON_ENV = "BARECOUNT_BQEMULATOR_PYTHON"
"""The Python of the emulator's environment; default `.venv-bqemulator/bin/python` in the project."""
EMULATOR_ENVIRONMENT = ".venv-bqemulator"
LAUNCHER = Path(__file__).with_name("bqemulator_launcher.py")
ENDPOINT_FILE = "endpoint"
"""Where a running shared emulator says its REST endpoint, in its data folder."""
READY_TIMEOUT_SECONDS = 60.0
"""It answers in under 2 s on an idle machine; a loaded one (the test suite on two cores) takes longer."""


def emulator_python(project_root: Path) -> Path:
    """The emulator environment's Python (it may not be made yet: starting the emulator says how to make it)."""
    configured = os.environ.get(EMULATOR_PYTHON_ENV)
    return Path(configured) if configured else project_root / EMULATOR_ENVIRONMENT / "bin" / "python"


def _check_environment(python: Path) -> None:
    if not python.is_file():
        raise UsageError(
            f"no BigQuery emulator environment at {python}: run `make bqemulator` (it needs DuckDB 1.5 and so "
            f"lives apart from BareCount's), or set {EMULATOR_PYTHON_ENV}"
        )


@dataclass
class BigQueryEmulator:
    """One emulator process: `with BigQueryEmulator(python, log) as emulator:` starts it and waits until it is ready;
    leaving the block stops it and everything it started (its process group)."""

    python: Path
    log_file: Path
    project: str = "barecount-local"
    data_dir: Path | None = None
    """Keep the tables in this folder (persistent); None keeps them in memory until the emulator stops."""
    rest_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self) -> BigQueryEmulator:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.python),
            str(LAUNCHER),
            "--rest-port",
            str(self.rest_port),
            "--grpc-port",
            str(self.grpc_port),
            "--project",
            self.project,
            *(["--ephemeral"] if self.data_dir is None else ["--persistent", "--data-dir", str(self.data_dir)]),
            "--log-level",
            "warning",
        ]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"the BigQuery emulator exited at start: {self._log_tail()}")
            if is_ready(self.endpoint):
                return
            time.sleep(0.1)
        self.stop()
        waited = f"{READY_TIMEOUT_SECONDS:.0f} s"
        raise RuntimeError(f"the BigQuery emulator was not ready after {waited}: {self._log_tail()}")

    def _log_tail(self) -> str:
        lines = self.log_file.read_text(errors="replace").splitlines() if self.log_file.exists() else []
        return " | ".join(lines[-5:]) or f"nothing in {self.log_file}"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process_group(process, grace_seconds=10)

    def __enter__(self) -> BigQueryEmulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def is_ready(endpoint: str) -> bool:
    """Whether an emulator answers at `endpoint`."""
    try:
        with urllib.request.urlopen(f"{endpoint}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _join_or_start(python: Path, data_dir: Path, project: str) -> tuple[str, BigQueryEmulator | None]:
    """The endpoint of the emulator keeping its tables in `data_dir`, and the emulator if this call started it.

    Its endpoint is kept in `data_dir/endpoint`; starting is serialised by a lock on `data_dir/start.lock`, so
    two commands started together share one emulator instead of fighting over its files.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    endpoint_file = data_dir / ENDPOINT_FILE
    with (data_dir / "start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if endpoint_file.is_file() and is_ready(known := endpoint_file.read_text().strip()):
            return known, None
        _check_environment(python)
        emulator = BigQueryEmulator(python, data_dir / "emulator.log", project=project, data_dir=data_dir).start()
        endpoint_file.write_text(emulator.endpoint)
    return emulator.endpoint, emulator


def _stop_shared(emulator: BigQueryEmulator, data_dir: Path) -> None:
    (data_dir / ENDPOINT_FILE).unlink(missing_ok=True)
    emulator.stop()


def shared_emulator(python: Path, data_dir: Path, project: str) -> str:
    """The endpoint of the emulator that keeps its tables in `data_dir`: the one already running (another command,
    `barecount ui`, a run's worker), or one started now and stopped when this process exits."""
    endpoint, started = _join_or_start(python, data_dir, project)
    if started is not None:
        atexit.register(_stop_shared, started, data_dir)
    return endpoint


@contextmanager
def holding_emulator(python: Path, data_dir: Path, project: str) -> Iterator[str]:
    """Keep the emulator of `data_dir` running for the block, so that every command and process started in it
    shares one instead of starting its own: `barecount ui` holds it for its webserver, daemon and runs."""
    endpoint, started = _join_or_start(python, data_dir, project)
    try:
        yield endpoint
    finally:
        if started is not None:
            _stop_shared(started, data_dir)

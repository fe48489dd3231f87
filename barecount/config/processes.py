"""Stopping a server BareCount started in a session of its own (the BigQuery emulator; in tests, `dagster dev`):
the whole process group, so that what the server started itself stops with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess


def free_port() -> int:
    """A local TCP port nothing listens on now, for a server to start on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_process_group(process: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """SIGTERM to the group of `process` (started with `start_new_session=True`), SIGKILL after the grace time."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

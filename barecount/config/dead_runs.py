"""Runs whose process died are marked failed, so that no run stays STARTED and the queue moves on.

A `barecount run` executes in its own process (in-process executor): a `kill -9` or a crash leaves its run
STARTED in the instance for good, and with one run at a time every run launched from the UI or a sensor then
waits behind it. Each CLI run carries the pid, host and start time of its process in its tags; the next
`barecount` command that opens the instance, and the daemon's `dead_runs_sensor` (`defs.sensors`), mark a
run failed when that process is gone ("process gone"). Its partitions keep their previous state: every write is one
transaction, and the ledger has no entry of it. Dagster's run monitoring (in `resources/dagster.yaml`)
covers runs the daemon launched that never started; the default run launcher cannot tell whether a started
worker is still alive, so runs from the UI are not judged here.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg

PROCESS_TAG = "barecount/process"
"""`<host> <pid> <start time>` of the process executing the run (start time: clock ticks since boot, on Linux)."""
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def _started(pid: int) -> str | None:
    """When process `pid` started (field 22 of /proc/<pid>/stat), "" without /proc, None when it is gone.

    The start time tells a pid reused by a later process from the one that ran the run."""
    if Path("/proc/self").exists():
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        except (FileNotFoundError, ProcessLookupError):
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return ""


def process_tags() -> dict[str, str]:
    """The tags that name this process as the one executing a run."""
    pid = os.getpid()
    return {PROCESS_TAG: f"{socket.gethostname()} {pid} {_started(pid) or ''}".strip()}


def _named_process(run: dg.DagsterRun) -> tuple[str, str, str]:
    """(host, pid, start time) from the run's tag, "" for what it does not say."""
    host, pid, started = [*run.tags.get(PROCESS_TAG, "").split(), "", "", ""][:3]
    return host, pid, started


def is_gone(run: dg.DagsterRun) -> bool:
    """Whether the process named in the run's tags is no longer running (False for a run of another host or
    without the tag: nothing here can tell)."""
    host, pid, started = _named_process(run)
    if host != socket.gethostname() or not pid.isdigit():
        return False
    now = _started(int(pid))
    return now is None or (bool(started) and bool(now) and now != started)


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-progress run whose process is gone; the ids of those runs."""
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        if is_gone(run):
            host, pid, _ = _named_process(run)
            instance.report_run_failed(
                run,
                message=f"process gone: the barecount process {pid} on {host} that ran it is no longer running; "
                "its partitions keep their previous state",
            )
            failed.append(run.run_id)
    return failed

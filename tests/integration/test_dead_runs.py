"""A run whose process died is marked failed ("process gone") by the next command that opens the instance; a run
of a live process, or of another host, is left alone."""

from __future__ import annotations

import socket
import subprocess
import sys

import dagster as dg

from barecount.config.dead_runs import PROCESS_TAG, fail_dead_runs, process_tags


def _started_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> str:
    run = instance.create_run_for_job(dg.GraphDefinition(name="nothing").to_job(), tags=tags)
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=run.job_name, message="started"),
    )
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # type: ignore[union-attr]
    return run.run_id


def test_a_run_whose_process_is_gone_is_failed_and_live_ones_are_not(instance: dg.DagsterInstance) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone_pid = finished.stdout.strip()
    host = socket.gethostname()
    dead = _started_run(instance, {PROCESS_TAG: f"{host} {gone_pid} 12345"})
    reused = _started_run(instance, {PROCESS_TAG: process_tags()[PROCESS_TAG].rsplit(" ", 1)[0] + " 1"})
    alive = _started_run(instance, process_tags())
    elsewhere = _started_run(instance, {PROCESS_TAG: f"not-{host} {gone_pid} 12345"})
    untagged = _started_run(instance, {})

    assert sorted(fail_dead_runs(instance)) == sorted([dead, reused])  # a pid now in use by another process

    status = {r.run_id: r.status for r in instance.get_runs()}
    assert status[dead] == status[reused] == dg.DagsterRunStatus.FAILURE
    assert status[alive] == status[elsewhere] == status[untagged] == dg.DagsterRunStatus.STARTED
    (failure,) = instance.all_logs(dead, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert failure.message is not None and f"process gone: the barecount process {gone_pid}" in failure.message
    assert fail_dead_runs(instance) == []

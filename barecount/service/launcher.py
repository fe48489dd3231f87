"""Runs each accepted pipeline run in a process of its own, and watches them.

Processes fork from a server that has imported Dagster and BareCount once (multiprocessing's forkserver), so a
run starts in milliseconds instead of the seconds an interpreter takes to import them. A supervisor thread beats
each live run's reservation, fails a run whose step outlived its timeout (its process is killed), fails a run
whose process ended without finishing it (killed, crashed) together with its Dagster run, and reclaims the
reservations of runs no service beats any more (a service that died). Whatever ends a run frees its slot.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections import Counter, deque
from collections.abc import Mapping
from datetime import timedelta
from multiprocessing import connection, forkserver
from multiprocessing.process import BaseProcess

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from barecount.config.dead_runs import fail_dead_runs
from barecount.config.instance import open_instance
from barecount.config.profiles import load_settings
from barecount.config.project import ProjectPaths
from barecount.service import records
from barecount.service.quotas import release
from barecount.service.state import now, reservations, run_steps
from barecount.service.worker import execute_pipeline_run, notify

WATCH_SECONDS = 0.5
STALE_AFTER = timedelta(seconds=60)
"""A reservation whose run no service has beaten for this long belongs to a run that died with its service."""


def _ended_how(process: BaseProcess) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        return f"killed by signal {signal.Signals(-code).name}"
    return f"exit code {code}"


class Launcher:
    """Starts runs and supervises them until they end. An organisation's runs take its lanes in the order they
    were accepted: on DuckDB one lane (the file admits one writer, so a second run at once would only wait for its
    lock), on BigQuery as many as its concurrent limit. A run waiting for a lane stays `pending`."""

    def __init__(self, paths: ProjectPaths, state_url: str, engine: Engine, lanes: Mapping[str, int]) -> None:
        self.paths, self.state_url, self.engine, self.lanes = paths, state_url, engine, lanes
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(["barecount.service.warm"])
        self.children: dict[str, BaseProcess] = {}
        self.org_of: dict[str, str] = {}
        self.waiting: dict[str, deque[str]] = {org: deque() for org in lanes}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.supervisor = threading.Thread(target=self._supervise, name="barecount-supervisor", daemon=True)
        self.instance = open_instance(paths)

    def start(self) -> None:
        forkserver.ensure_running()  # now, not at the first request: its imports take seconds
        self._reclaim()
        self.supervisor.start()

    def launch(self, run_id: str, org: str) -> None:
        """Start the run now if its organisation has a free lane, else when one frees."""
        with self.lock:
            self.waiting[org].append(run_id)
            self.org_of[run_id] = org
        self._start_waiting()

    def _start_waiting(self) -> None:
        with self.lock:
            busy = Counter(self.org_of[r] for r in self.children)
            starting = []
            for org, queue in self.waiting.items():
                while queue and busy[org] < self.lanes[org]:
                    starting.append(queue.popleft())
                    busy[org] += 1
            for run_id in starting:
                process = self.context.Process(
                    target=execute_pipeline_run,
                    args=(str(self.paths.root), self.state_url, run_id),
                    name=f"barecount-run-{run_id[:8]}",
                )
                process.start()
                self.children[run_id] = process
        for run_id in starting:
            records.update(self.engine, run_id, worker_pid=self.children[run_id].pid)

    def stop(self) -> None:
        """Stop supervising; runs still going are killed and failed, runs still waiting are failed; slots freed."""
        self.stopping.set()
        self.supervisor.join(timeout=5)
        with self.lock:
            children = dict(self.children)
            queued = [r for queue in self.waiting.values() for r in queue]
            for queue in self.waiting.values():
                queue.clear()
        for run_id, process in children.items():
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
                records.move(self.engine, run_id, "failed", "the service stopped while the run was going")
        for run_id in queued:
            records.move(self.engine, run_id, "failed", "the service stopped before the run had a lane")
        fail_dead_runs(self.instance)

    def _supervise(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                sentinels = [process.sentinel for process in self.children.values()]
            if sentinels:  # woken at once when a run's process ends: its lane goes to the next run now
                connection.wait(sentinels, timeout=WATCH_SECONDS)
            elif self.stopping.wait(WATCH_SECONDS):
                break
            try:
                self._watch()
            except Exception as exc:  # a database that blinks must not end the supervision
                print(f"barecount serve: supervising runs: {type(exc).__name__}: {exc}", flush=True)

    def _watch(self) -> None:
        with self.lock:
            children = dict(self.children)
        ended = [run_id for run_id, process in children.items() if not process.is_alive()]
        with self.lock:
            queued = [r for queue in self.waiting.values() for r in queue]
        records.heartbeat(self.engine, [r for r in children if r not in ended] + queued)
        for run_id in ended:
            process = children[run_id]
            process.join()
            with self.lock:
                self.children.pop(run_id, None)
            self._fail(run_id, f"its process ended before the run did ({_ended_how(process)})")
        self._timeouts(children)
        self._start_waiting()
        self._reclaim()

    def _timeouts(self, children: dict[str, BaseProcess]) -> None:
        """Kill the process of a run whose current step outlived its timeout, and fail the run."""
        if not children:
            return
        with self.engine.connect() as conn:
            going = conn.execute(
                sa.select(run_steps).where(run_steps.c.run_id.in_(children), run_steps.c.status == "running")
            ).all()
        at = now()
        for step in going:
            started = step.started_at if step.started_at.tzinfo else step.started_at.replace(tzinfo=at.tzinfo)
            if at - started > timedelta(seconds=step.timeout_seconds):
                process = children[step.run_id]
                process.kill()
                process.join(timeout=10)
                with self.lock:
                    self.children.pop(step.run_id, None)
                why = f"step {step.step_id} timed out after {step.timeout_seconds} s (attempt {step.attempt})"
                with self.engine.begin() as conn:
                    conn.execute(
                        sa.update(run_steps)
                        .where(run_steps.c.id == step.id)
                        .values(status="failed", ended_at=at, error=why)
                    )
                self._fail(step.run_id, why)

    def _fail(self, run_id: str, why: str) -> None:
        """Fail a run whose process is gone, with its Dagster run (STARTED for good otherwise), and say so."""
        if not records.move(self.engine, run_id, "failed", why):
            return
        fail_dead_runs(self.instance)
        record = records.run_by_id(self.engine, run_id)
        notify(load_settings(self.paths, org=record.org), record, "failed", why)

    def _reclaim(self) -> None:
        """Fail the runs whose reservation nobody beats any more, and free their slots."""
        cutoff = now() - STALE_AFTER
        with self.lock:
            mine = set(self.children) | {r for queue in self.waiting.values() for r in queue}
        with self.engine.connect() as conn:
            stale = conn.scalars(
                sa.select(reservations.c.run_id).where(
                    reservations.c.released_at.is_(None), reservations.c.heartbeat_at < cutoff
                )
            ).all()
        for run_id in set(stale) - mine:
            why = "the service running it is gone (its reservation went stale)"
            if not records.move(self.engine, run_id, "failed", why):  # it ended, and only its slot was left
                with self.engine.begin() as conn:
                    release(conn, run_id, why, now())

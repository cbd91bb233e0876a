"""Jobs and the loop that runs them on the leader.

A :class:`Job` has a name, an interval in seconds and a function of the current time
that returns a :class:`JobResult`. :meth:`Scheduler.run_due` runs, synchronously, every job
whose interval has passed since its last start (kept in ``scheduler_jobs``, so a new leader
carries on where the old one stopped); tests call it after moving an injected clock.
:meth:`Scheduler.start` runs a background thread that ticks every ``tick_seconds``: check
leadership (:mod:`keykeeper.scheduler.leader`), then run the due jobs if this node leads.

A job's exception is caught, logged and counted as a failed run (outcome ``error``); it
never stops the loop. After each run ``on_run(job, outcome, seconds, done, failed)``
(metrics) is called, and ``audit(job, outcome, done, failed)`` (the audit trail) for each
run that did or failed something (a run that found nothing to do is counted in the
metrics and ``scheduler_jobs`` only: five jobs every 10 s would otherwise add 43,000
empty records a day to the chain); each change of role calls ``on_leader(is_leader)``.
Outcomes: ``success`` (nothing failed), ``partial`` (some items failed), ``error`` (the
job raised).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from keykeeper.scheduler.leader import Leader
from keykeeper.scheduler.runs import JobRun, JobRuns

__all__ = ["Job", "JobResult", "Scheduler"]

log = logging.getLogger("keykeeper.scheduler")

TICK_SECONDS = 1.0
STOP_WAIT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class JobResult:
    """What one run did: items ``done`` and ``failed`` (keys, requests), and a short
    ``detail`` for operators (never a secret)."""

    done: int = 0
    failed: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    interval_seconds: float
    run: Callable[[datetime], JobResult]


class Scheduler:
    """Runs ``jobs`` on the leader. ``clock()`` gives the current (UTC) time; ``node_id``
    names this node in ``scheduler_jobs``; ``engine`` is the store's; the node seeks the
    lead only while ``eligible()`` (config: while unsealed)."""

    def __init__(self, jobs: Sequence[Job], leader: Leader, clock: Callable[[], datetime],
                 node_id: str, on_run: Callable[[str, str, float, int, int], None] | None = None,
                 on_leader: Callable[[bool], None] | None = None,
                 audit: Callable[[str, str, int, int], None] | None = None, *,
                 engine: Engine, tick_seconds: float = TICK_SECONDS,
                 eligible: Callable[[], bool] = lambda: True) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError("job names must be unique")
        self._jobs = {j.name: j for j in jobs}
        self.leader = leader
        self._clock = clock
        self.node_id = node_id
        self._on_run = on_run
        self._on_leader = on_leader
        self._audit = audit
        self.runs = JobRuns(engine)
        self._tick = tick_seconds
        self._eligible = eligible
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()   # one job at a time on this node
        self._was_leader = False

    @property
    def job_names(self) -> list[str]:
        return list(self._jobs)

    def interval(self, name: str) -> float:
        """Seconds between runs of job ``name`` (KeyError if unknown)."""
        return self._jobs[name].interval_seconds

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called: long jobs stop between items."""
        return self._stop.is_set()

    @property
    def role(self) -> str:
        """``leader`` or ``standby``."""
        return "leader" if self.leader.is_leader else "standby"

    # -- running -----------------------------------------------------------------------------
    def run_due(self, now: datetime | None = None) -> dict[str, JobResult]:
        """Run every job due at ``now`` (default: the clock), in the order given; returns
        the result of each job that ran. Does not check leadership (the loop does)."""
        at = now or self._clock()
        ran: dict[str, JobResult] = {}
        for job in self._jobs.values():
            if self._stop.is_set():
                break
            last = self.runs.get(job.name)
            if (last is not None and last.last_started_at is not None
                    and at - last.last_started_at < timedelta(seconds=job.interval_seconds)):
                continue
            ran[job.name] = self.run_job(job.name, at)
        return ran

    def run_job(self, name: str, now: datetime | None = None) -> JobResult:
        """Run one job now, whatever its interval. KeyError for an unknown job name."""
        job = self._jobs[name]
        at = now or self._clock()
        with self._run_lock:
            self.runs.started(name, self.node_id, at)
            started = time.monotonic()
            try:
                result = job.run(at)
                outcome = "success" if result.failed == 0 else "partial"
            except Exception as exc:
                log.exception("scheduler: job %s failed", name)
                result = JobResult(0, 1, f"the job raised {type(exc).__name__}")
                outcome = "error"
            seconds = time.monotonic() - started
            try:
                self.runs.finished(name, self.node_id, self._clock(), outcome, result.done,
                                   result.failed, result.detail)
            except Exception:
                log.exception("scheduler: cannot record the run of job %s", name)
        if result.done or result.failed:
            log.info("scheduler: %s %s: %d done, %d failed%s", name, outcome, result.done,
                     result.failed, f" ({result.detail})" if result.detail else "")
        self._notify(name, outcome, seconds, result)
        return result

    def _notify(self, name: str, outcome: str, seconds: float, result: JobResult) -> None:
        if self._on_run is not None:
            try:
                self._on_run(name, outcome, seconds, result.done, result.failed)
            except Exception:
                log.exception("scheduler: on_run callback failed")
        if self._audit is not None and (result.done or result.failed or outcome != "success"):
            try:
                self._audit(name, outcome, result.done, result.failed)
            except Exception:
                log.exception("scheduler: the run of job %s could not be audited", name)

    def last_runs(self) -> dict[str, JobRun | None]:
        """Each job's last run (by any node), or None if it never ran."""
        known = {r.name: r for r in self.runs.all()}
        return {name: known.get(name) for name in self._jobs}

    # -- the loop ----------------------------------------------------------------------------
    def tick(self) -> None:
        """One turn of the loop: check leadership, then run the due jobs if leading. A node
        that is not ``eligible`` (sealed) gives up the lead and does not seek it, so that an
        unsealed node can do the work."""
        try:
            if self._eligible():
                leading = self.leader.check()
            else:
                self.leader.release()
                leading = False
        except Exception:
            log.exception("scheduler: leader check failed")
            leading = False
        if leading != self._was_leader:
            self._was_leader = leading
            log.info("scheduler: node %s is now %s", self.node_id,
                     "the leader" if leading else "a standby")
            if self._on_leader is not None:
                try:
                    self._on_leader(leading)
                except Exception:
                    log.exception("scheduler: on_leader callback failed")
        if leading:
            try:
                self.run_due()
            except Exception:
                log.exception("scheduler: run failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self._tick)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        if self._on_leader is not None:
            self._on_leader(False)
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop (a running job stops between items), then release leadership."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(STOP_WAIT_SECONDS)
        self.leader.release()
        if self._was_leader:
            self._was_leader = False
            if self._on_leader is not None:
                try:
                    self._on_leader(False)
                except Exception:
                    log.exception("scheduler: on_leader callback failed")

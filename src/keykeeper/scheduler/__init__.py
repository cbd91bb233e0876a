"""The lifecycle scheduler: jobs run on one leader per cluster (DESIGN.md, Layers).

* :mod:`.engine` -- :class:`Job`, :class:`JobResult` and :class:`Scheduler` (the loop).
* :mod:`.leader` -- leader election: a PostgreSQL advisory lock, or a file lock for SQLite.
* :mod:`.runs` -- the ``scheduler_jobs`` table: each job's last run, seen by every node.
* :mod:`.scans` -- the indexed queries that find keys a job has to act on.

The jobs themselves (rotation, crypto-periods, destruction, approval expiry) are service
code: keykeeper.service.lifecycle_jobs and keykeeper.service.rotation.
"""

from keykeeper.scheduler.engine import Job, JobResult, Scheduler
from keykeeper.scheduler.leader import FileLockLeader, Leader, PgAdvisoryLeader, leader_for
from keykeeper.scheduler.runs import JobRun, JobRuns

__all__ = ["FileLockLeader", "Job", "JobResult", "JobRun", "JobRuns", "Leader",
           "PgAdvisoryLeader", "Scheduler", "leader_for"]

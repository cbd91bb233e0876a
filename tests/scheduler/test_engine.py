"""The scheduler engine and leader election over a real store (both backends)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from keykeeper.scheduler import Job, JobResult, Scheduler, leader_for
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.integration.conftest import Clock


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _wait(cond: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_a_raising_job_is_a_failed_run_and_the_rest_still_run(engine: Engine,
                                                              tmp_path: Path) -> None:
    calls: list[str] = []
    runs: list[tuple[str, str, int, int]] = []

    def boom(now: datetime) -> JobResult:
        raise RuntimeError("no")

    def fine(now: datetime) -> JobResult:
        calls.append("fine")
        return JobResult(2, 0)

    s = Scheduler([Job("boom", 10, boom), Job("fine", 10, fine)], leader_for(engine, tmp_path),
                  Clock(), "n1", on_run=lambda j, o, _t, d, f: runs.append((j, o, d, f)),
                  engine=engine)
    ran = s.run_due()
    assert ran["boom"].failed == 1 and ran["fine"].done == 2 and calls == ["fine"]
    assert runs == [("boom", "error", 0, 1), ("fine", "success", 2, 0)]
    last = s.last_runs()
    assert last["boom"] is not None and last["boom"].last_outcome == "error"
    assert last["fine"] is not None and last["fine"].items_done == 2


def test_the_last_run_is_shared_by_every_node(engine: Engine, tmp_path: Path) -> None:
    clock = Clock()
    count: list[str] = []

    def job(node: str) -> Job:
        return Job("tick", 60, lambda now: (count.append(node), JobResult(1))[1])

    a = Scheduler([job("a")], leader_for(engine, tmp_path), clock, "a", engine=engine)
    b = Scheduler([job("b")], leader_for(engine, tmp_path), clock, "b", engine=engine)
    a.run_due()
    clock.advance(seconds=59)
    assert b.run_due() == {}
    clock.advance(seconds=1)
    assert set(b.run_due()) == {"tick"}
    assert count == ["a", "b"]
    run = b.last_runs()["tick"]
    assert run is not None and run.node == "b" and run.last_started_at == clock.now


def test_one_leader_at_a_time(engine: Engine, tmp_path: Path) -> None:
    a, b = leader_for(engine, tmp_path, 0.0), leader_for(engine, tmp_path, 0.0)
    try:
        assert a.check() and a.is_leader
        assert not b.check() and not b.is_leader
        assert a.check()  # keeps it
        a.release()
        assert b.check() and not a.check()
    finally:
        a.release()
        b.release()


def test_stores_elect_separately(database_url: str, engine: Engine, tmp_path: Path) -> None:
    """Each PostgreSQL schema (or SQLite directory) elects its own leader."""
    if engine.dialect.name == "postgresql":
        from tests.conftest import PgSchema
        other_schema = PgSchema()
        other = make_engine(other_schema.url)
    else:
        other_schema = None
        (tmp_path / "other").mkdir()
        other = make_engine(f"sqlite:///{tmp_path / 'other' / 'keykeeper.db'}")
    a, b = leader_for(engine, tmp_path), leader_for(other, tmp_path)
    try:
        assert a.check() and b.check()
    finally:
        a.release()
        b.release()
        other.dispose()
        if other_schema is not None:
            other_schema.drop()


def test_the_loop_runs_on_the_leader_and_fails_over(engine: Engine, tmp_path: Path) -> None:
    clock = Clock(datetime.now(UTC))
    seen: list[str] = []
    roles: dict[str, list[bool]] = {"a": [], "b": []}

    def make(node: str) -> Scheduler:
        job = Job("tick", 0, lambda now: (seen.append(node), JobResult(1))[1])
        return Scheduler([job], leader_for(engine, tmp_path, 0.1), clock, node,
                         on_leader=roles[node].append, engine=engine, tick_seconds=0.05)

    a, b = make("a"), make("b")
    a.start()
    try:
        assert _wait(lambda: a.role == "leader", 5)
        b.start()
        assert _wait(lambda: len(seen) >= 3, 5)
        assert set(seen) == {"a"} and b.role == "standby"
        a.stop()
        assert roles["a"][-1] is False
        assert _wait(lambda: b.role == "leader", 5)
        assert _wait(lambda: seen[-1] == "b", 5)
        assert roles["b"][-1] is True
    finally:
        a.stop()
        b.stop()


def test_pg_leader_steps_down_when_its_connection_dies(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    a = leader_for(engine, Path("."), 0.0)
    b = leader_for(engine, Path("."), 0.0)
    try:
        assert a.check()
        pid = a._conn.execute(text("SELECT pg_backend_pid()")).scalar_one()  # type: ignore[union-attr]
        a._conn.commit()  # type: ignore[union-attr]
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            conn.commit()
        assert _wait(lambda: b.check(), 5)   # the lock went with the session
        assert not a.check() and not a.is_leader
    finally:
        a.release()
        b.release()


def test_interval_zero_jobs_and_time_going_back(engine: Engine, tmp_path: Path) -> None:
    clock = Clock()
    n: list[int] = []
    s = Scheduler([Job("j", 30, lambda now: (n.append(1), JobResult())[1])],
                  leader_for(engine, tmp_path), clock, "x", engine=engine)
    s.run_due()
    clock.now -= timedelta(hours=1)    # a clock stepped back: the job waits, it never repeats
    assert s.run_due() == {} and n == [1]


def test_an_ineligible_node_gives_up_the_lead(engine: Engine, tmp_path: Path) -> None:
    """A sealed node (not eligible) steps down, so that an unsealed one can lead."""
    sealed = [False]
    ran: list[str] = []

    def make(node: str, eligible: Callable[[], bool]) -> Scheduler:
        job = Job("j", 0, lambda now: (ran.append(node), JobResult())[1])
        return Scheduler([job], leader_for(engine, tmp_path, 0.0), Clock(), node,
                         engine=engine, eligible=eligible)

    a, b = make("a", lambda: not sealed[0]), make("b", lambda: True)
    try:
        a.tick()
        b.tick()
        assert (a.role, b.role) == ("leader", "standby") and ran == ["a"]
        sealed[0] = True
        a.tick()
        b.tick()
        assert (a.role, b.role) == ("standby", "leader") and ran[-1] == "b"
    finally:
        a.stop()
        b.stop()


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from keykeeper.config import Settings
    from keykeeper.errors import InvalidArgument
    monkeypatch.setenv("KEYKEEPER_SCHEDULER", "OFF")
    monkeypatch.setenv("KEYKEEPER_SCHEDULER_INTERVAL", "2.5")
    monkeypatch.setenv("KEYKEEPER_EXPIRY_NOTICE", "7d")
    s = Settings.from_env()
    assert (s.scheduler, s.scheduler_interval, s.expiry_notice) == (False, 2.5, 7 * 86400)
    monkeypatch.delenv("KEYKEEPER_SCHEDULER")
    monkeypatch.delenv("KEYKEEPER_EXPIRY_NOTICE")
    s = Settings.from_env()
    assert (s.scheduler, s.expiry_notice) == (True, 30 * 86400)
    monkeypatch.setenv("KEYKEEPER_SCHEDULER", "maybe")
    with pytest.raises(InvalidArgument):
        Settings.from_env()
    monkeypatch.setenv("KEYKEEPER_SCHEDULER", "on")
    for bad in ("0", "-1", "ten"):
        monkeypatch.setenv("KEYKEEPER_SCHEDULER_INTERVAL", bad)
        with pytest.raises(InvalidArgument):
            Settings.from_env()

"""Crash safety of the real server (issue 7 §3): kill -9 of the SERVER process at random
points while a client streams ``POST /v1/sys/backup`` into a file, and while
``POST /v1/sys/restore`` runs into a fresh second server; 52 runs in all, on SQLite and
PostgreSQL (tests/backup/test_crash.py kills a child process running the same service
code instead; both are kept).

The servers are real (tests/support/server.py: uvicorn in a subprocess, one worker), the
kills are SIGKILL of that process, and the clients are the SDK (``Client.backup_create``
to a path, written to a temporary file and renamed only when the archive arrived and
verified; and to an open file, which keeps whatever bytes arrived). One seeded source
per backend serves every backup run (restarted and unsealed after each kill); each
restore run gets a fresh empty target (a copy of one initialized SQLite file, or a new
PostgreSQL schema).

* Backup: a call that returned left an archive that verifies with the shares and holds
  every key (its record count equals a reference archive's, not its own manifest's); a
  call that raised left nothing at the final path and no temporary file; the bytes an
  open file received from a killed server never verify.
* Restore: after each kill the target is restarted and unsealed and answers either as
  before the restore (every archived table as in the empty instance, no keys over REST)
  or with the whole archive (every table as after a completed restore, every key listed
  over REST, golden ciphertexts decrypt), never a mix; from the empty state a second
  restore then succeeds. Half the kills aim at the restore's write transaction: they are
  fired the moment a probe sees it holding its write lock (PostgreSQL: a ``keys`` table
  lock only an uncommitted restore holds; SQLite: the database write lock held across
  consecutive probes), and on PostgreSQL such a kill must leave the empty state.

The test can fail: it requires both outcomes (kept and refused archives; empty and
restored targets) and kills that landed mid-write.
"""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from keykeeper.backup import ArchiveInvalid, verify_archive
from keykeeper.client import Client
from keykeeper.errors import Internal, KeykeeperError
from keykeeper.store import backup_tables as bt
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.backup.seed import Seeded, seed
from tests.conftest import PG_DSN, PgSchema, pg_available
from tests.integration.conftest import PASSPHRASE, Clock, make_node
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

KEYS = 150
BACKUP_RUNS = {"sqlite": 20, "postgresql": 8}
RESTORE_RUNS = {"sqlite": 16, "postgresql": 8}
ROOT_TOKEN = "kk-crash-root-" + "0" * 20
TARGET = PASSPHRASE + " target"
TABLES = tuple(spec.name for spec in bt.ARCHIVED)


def _plan(runs: dict[str, int]) -> list[str]:
    """The backend of every run; all on SQLite when PostgreSQL does not answer."""
    if pg_available():
        return ["sqlite"] * sum(runs.values())
    order = ["sqlite"] * runs["sqlite"] + ["postgresql"] * runs["postgresql"]
    random.Random(3).shuffle(order)
    return order


# -- servers ------------------------------------------------------------------------------------
def _init_store(url: str, passphrase: str) -> Any:
    """Migrate and initialize ``url`` in-process (root token ROOT_TOKEN); the unsealed
    node, to seed (dispose its engine afterwards)."""
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    n = make_node(url, Clock())
    n.services.system.init(passphrase, root_token=ROOT_TOKEN)
    n.services.system.unseal(passphrase)
    return n


def _server(data_dir: Path, url: str, passphrase: str) -> ServerProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(data_dir=data_dir, database_url=url,
                           env={"KEYKEEPER_SCHEDULER": "off"})
    server.root_token, server.passphrase = ROOT_TOKEN, passphrase
    return server


def _up(server: ServerProcess) -> None:
    """Start (again) and unseal."""
    server.start()
    server.unseal()


def _kill(server: ServerProcess) -> None:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(30)
    server.proc = None


def _client(server: ServerProcess) -> Client:
    return Client(server.addr, ROOT_TOKEN)


@dataclass
class Outcome:
    """What a client call in a thread ended with."""

    error: BaseException | None = None
    value: Any = None
    done: threading.Event = field(default_factory=threading.Event)


def _in_thread(call: Callable[[], Any]) -> Outcome:
    out = Outcome()

    def run() -> None:
        try:
            out.value = call()
        except BaseException as exc:  # inspected by the test
            out.error = exc
        finally:
            out.done.set()

    threading.Thread(target=run, daemon=True).start()
    return out


def _settle(out: Outcome) -> bool:
    """Wait for the call; True if it returned. A failure must be a clear KeykeeperError
    (the connection broke: ``unavailable``), never ``internal``."""
    assert out.done.wait(120), "the client call hung after the server died"
    if out.error is None:
        return True
    assert isinstance(out.error, KeykeeperError) and not isinstance(out.error, Internal), \
        repr(out.error)
    return False


# -- the seeded sources ------------------------------------------------------------------------
@dataclass
class Source:
    backend: str
    server: ServerProcess
    seeded: Seeded
    schema: PgSchema | None = None


@dataclass
class Sources:
    by_backend: dict[str, Source]
    reference: Path          # a complete archive of the SQLite source
    shares: list[str]
    signer: str              # the source's signing key fingerprint, pinned by restores
    records: int             # records of a complete archive
    tmp: Path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sources]:
    tmp = tmp_path_factory.mktemp("crash-server")
    made: dict[str, Source] = {}
    try:
        for backend in sorted(set(_plan(BACKUP_RUNS))):
            schema = PgSchema() if backend == "postgresql" else None
            url = schema.url if schema else f"sqlite:///{tmp / 'source.db'}"
            n = _init_store(url, PASSPHRASE)
            seeded = seed(n.services, KEYS, golden_sample=10, signature_sample=0)
            n.services.deps.engine.dispose()
            server = _server(tmp / f"source-{backend}", url, PASSPHRASE)
            made[backend] = Source(backend, server, seeded, schema)
            _up(server)
        reference = tmp / "reference.backup"
        with _client(made["sqlite"].server) as kk:
            created = kk.backup_create(reference, shares=3, threshold=2)
        report = verify_archive(lambda: reference.open("rb"), shares=created.shares[:2])
        assert report.opened and report.counts["keys"] == KEYS
        yield Sources(made, reference, created.shares, created.signer, report.records, tmp)
    finally:
        for source in made.values():
            source.server.stop()
            if source.schema is not None:
                source.schema.drop()


# -- backup -------------------------------------------------------------------------------------
def _timed_backup(server: ServerProcess) -> float:
    started = time.monotonic()
    with _client(server) as kk:
        kk.backup_create(io.BytesIO(), shares=3, threshold=2)
    return time.monotonic() - started


def test_kill_server_during_backup_create(sources: Sources, tmp_path: Path) -> None:
    rng = random.Random(17)
    full = {b: _timed_backup(s.server) for b, s in sources.by_backend.items()}
    counts = {"runs": 0, "returned": 0, "raised": 0, "kept": 0, "partial bytes refused": 0,
              "empty answers": 0}
    for i, backend in enumerate(_plan(BACKUP_RUNS)):
        source = sources.by_backend[backend]
        server = source.server
        if server.proc is None:
            _up(server)
        out_dir = tmp_path / f"run-{i}"
        out_dir.mkdir()
        final = out_dir / "kk.backup"
        to_path = i % 2 == 0
        received = io.BytesIO()

        def call(server: ServerProcess = server, final: Path = final, to_path: bool = to_path,
                 received: io.BytesIO = received) -> Any:
            with _client(server) as kk:
                return kk.backup_create(final if to_path else received, shares=3,
                                        threshold=2)

        outcome = _in_thread(call)
        if i % 7 == 3:  # some kills land after the end whatever the machine's load
            outcome.done.wait(60)
        elif to_path:
            time.sleep(rng.uniform(0, full[backend] * 1.3))
        else:  # once the archive is flowing: the kill lands mid-stream or after its end
            deadline = time.monotonic() + 30
            while received.tell() == 0 and not outcome.done.is_set() \
                    and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, full[backend] * 0.6))
        _kill(server)
        returned = _settle(outcome)
        counts["runs"] += 1
        counts["returned" if returned else "raised"] += 1
        left = sorted(p.name for p in out_dir.iterdir())
        if to_path:
            if returned:
                assert left == ["kk.backup"], left
            else:
                assert left == [], f"a killed backup left {left}"  # nothing, not even .part
        if returned:
            shares = outcome.value.shares
            data = final.read_bytes() if to_path else received.getvalue()
            report = verify_archive(lambda data=data: io.BytesIO(data),  # type: ignore[misc]
                                    shares=shares[1:])
            assert report.opened and report.counts["keys"] == KEYS
            assert report.records == sources.records  # whole, by an outside count
            counts["kept"] += 1
        elif not to_path:
            data = received.getvalue()
            if not data:
                counts["empty answers"] += 1
            with pytest.raises(ArchiveInvalid):
                verify_archive(lambda data=data: io.BytesIO(data))  # type: ignore[misc]
            counts["partial bytes refused"] += 1
    print(f"\nCRASH server backup: {counts['runs']} runs (full backup "
          + ", ".join(f"{b} {t:.2f} s" for b, t in full.items()) + f"): {counts}")
    assert counts["kept"] >= 3 and counts["raised"] >= 5
    assert counts["partial bytes refused"] - counts["empty answers"] >= 3  # killed mid-stream


# -- restore ------------------------------------------------------------------------------------
class WriteProbe:
    """Whether the restore's write transaction is open on the target right now."""

    def __init__(self, backend: str, url: str, schema: PgSchema | None) -> None:
        self.backend, self.url, self.schema = backend, url, schema
        self._pg: psycopg.Connection[Any] | None = None

    def __enter__(self) -> WriteProbe:
        if self.schema is not None:
            self._pg = psycopg.connect(PG_DSN, autocommit=False)
            self._pg.execute(f'SET search_path = "{self.schema.name}"')
            self._pg.commit()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pg is not None:
            self._pg.close()

    def writer(self) -> str | None:
        """PostgreSQL: the full transaction id (xid8) of the transaction holding its write
        lock on ``keys`` (the restore's), None if none holds it."""
        if self._pg is None:
            return None
        try:
            row = self._pg.execute(
                "SELECT ((pg_current_xact_id()::text::bigint >> 32) << 32"
                " | a.backend_xid::text::bigint)::text FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'relation' AND l.relation = 'keys'::regclass"
                " AND l.granted AND l.pid <> pg_backend_pid() AND a.backend_xid IS NOT NULL"
                " LIMIT 1").fetchone()
            return None if row is None else str(row[0])
        finally:
            self._pg.rollback()

    def committed(self, xact: str, wait: float = 30.0) -> bool:
        """PostgreSQL: whether transaction ``xact`` committed, once it has ended (a backend
        whose client was killed aborts its transaction when it sees the connection gone)."""
        assert self._pg is not None
        deadline = time.monotonic() + wait
        while True:
            row = self._pg.execute("SELECT pg_xact_status(%s::xid8)", (xact,)).fetchone()
            self._pg.rollback()
            status = None if row is None else row[0]
            if status != "in progress" or time.monotonic() > deadline:
                return status == "committed"
            time.sleep(0.05)

    def writing(self) -> bool:
        if self._pg is not None:
            # ``keys`` gets a ROW EXCLUSIVE lock from the restore's first insert until it
            # commits or dies; nothing else writes keys on an idle target.
            try:
                self._pg.execute("LOCK TABLE keys IN SHARE MODE NOWAIT")
                return False
            except psycopg.errors.LockNotAvailable:
                return True
            finally:
                self._pg.rollback()
        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=0,
                               isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()


@dataclass
class Target:
    server: ServerProcess
    url: str
    schema: PgSchema | None


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {t: int(conn.execute(select(func.count()).select_from(
                bt.ARCHIVED[TABLES.index(t)].table)).scalar_one()) for t in TABLES}
    finally:
        engine.dispose()


def _listed_keys(server: ServerProcess) -> int:
    total, token = 0, ""
    while True:
        r = server.get("/v1/keys?page_size=100" + (f"&page_token={token}" if token else ""))
        assert r.status_code == 200, r.text
        total += len(r.json()["keys"])
        token = r.json().get("next_page_token") or ""
        if not token:
            return total


def _state(target: Target, seeded: Seeded, empty: dict[str, int],
           whole: dict[str, int] | None) -> str:
    """``empty`` or ``restored``, checked whole through the running server and its
    store; AssertionError for anything in between."""
    counts = _counts(target.url)
    listed = _listed_keys(target.server)
    if counts == empty:
        assert listed == 0
        return "empty"
    assert counts["keys"] == KEYS and counts["key_versions"] == seeded.versions, \
        f"half-restored: {counts}"
    if whole is not None:
        assert counts == whole, f"half-restored: {counts} != {whole}"
    assert listed == KEYS
    for g in seeded.goldens[:10] + seeded.service_goldens:
        if seeded.states[g.key_id] == "active":
            body: dict[str, Any] = {"ciphertext": g.ciphertext}
            if g.context:
                body["context"] = g.context
            r = target.server.post(f"/v1/keys/{g.key_id}/decrypt", body)
            assert r.status_code == 200, r.text
            assert r.json()["plaintext"] == _b64(g.plaintext)
    return "restored"


def _b64(data: bytes) -> str:
    import base64
    return base64.b64encode(data).decode()


def test_kill_server_during_restore(sources: Sources, tmp_path: Path) -> None:
    seeded = sources.by_backend["sqlite"].seeded
    template = tmp_path / "template.db"
    _init_store(f"sqlite:///{template}", TARGET).services.deps.engine.dispose()
    digest = hashlib.sha256(sources.reference.read_bytes()).hexdigest()
    made: list[Target] = []

    def target(i: int, backend: str) -> Target:
        schema = None
        if backend == "postgresql":
            schema = PgSchema()
            url = schema.url
            _init_store(url, TARGET).services.deps.engine.dispose()
        else:
            path = tmp_path / f"target-{i}.db"
            shutil.copyfile(template, path)
            url = f"sqlite:///{path}"
        t = Target(_server(tmp_path / f"target-{i}", url, TARGET), url, schema)
        made.append(t)
        _up(t.server)
        return t

    def restore(t: Target) -> Any:
        with _client(t.server) as kk:
            result = kk.backup_restore(sources.reference, shares=sources.shares[:2],
                                       signer=sources.signer)
        assert result.archive_sha256 == digest
        return result

    try:
        plan = _plan(RESTORE_RUNS)
        # A measuring run per backend: an uncut restore, and the two states to compare with.
        full: dict[str, float] = {}
        empty: dict[str, dict[str, int]] = {}
        whole: dict[str, dict[str, int]] = {}
        for k, backend in enumerate(sorted(set(plan))):
            first = target(-1 - k, backend)
            empty[backend] = _counts(first.url)
            started = time.monotonic()
            restore(first)
            full[backend] = time.monotonic() - started
            assert _state(first, seeded, empty[backend], None) == "restored"
            whole[backend] = _counts(first.url)
            first.server.stop()

        rng = random.Random(29)
        outcomes = {"empty": 0, "restored": 0, "killed while writing": 0,
                    "second restore": 0}
        for i, backend in enumerate(plan):
            t = target(i, backend)
            aim = i % 2 == 0
            with WriteProbe(backend, t.url, t.schema) as probe:
                outcome = _in_thread(lambda t=t: restore(t))  # type: ignore[misc]
                writing = False
                if aim:
                    # Fire the moment the restore's transaction holds its write lock
                    # (SQLite: on three probes in a row, not a short audit write).
                    seen, deadline = 0, time.monotonic() + full[backend] * 3 + 10
                    need = 1 if backend == "postgresql" else 3
                    while not outcome.done.is_set() and time.monotonic() < deadline:
                        seen = seen + 1 if probe.writing() else 0
                        if seen >= need:
                            writing = True
                            break
                        time.sleep(0.002)
                    if writing:
                        time.sleep(rng.uniform(0, 0.05))
                        writing = probe.writing()  # still open at the kill
                elif i % 4 == 3:  # after the answer: a committed restore must survive it
                    outcome.done.wait(full[backend] * 20 + 30)
                else:  # anywhere, upload and verification included, or after the end
                    time.sleep(rng.uniform(0, full[backend] * 2))
                xact = probe.writer() if writing else None
                _kill(t.server)
                if xact is not None and probe.committed(xact):
                    writing = False   # its commit beat the kill by a hair: not mid-transaction
            returned = _settle(outcome)
            _up(t.server)  # a restarted server on the same store
            state = _state(t, seeded, empty[backend], whole[backend])
            assert not (returned and state == "empty"), "a restore that answered was lost"
            if writing and not returned:
                outcomes["killed while writing"] += 1
                if backend == "postgresql":
                    assert state == "empty", "a kill mid-transaction left a restored store"
            outcomes[state] += 1
            if state == "empty":  # the restore simply runs again
                restore(t)
                assert _state(t, seeded, empty[backend], whole[backend]) == "restored"
                outcomes["second restore"] += 1
            t.server.stop()
            if t.schema is not None:
                t.schema.drop()
                t.schema = None
        print(f"\nCRASH server restore: {len(plan)} runs (uncut "
              + ", ".join(f"{b} {t:.2f} s" for b, t in full.items()) + "; "
              f"{plan.count('postgresql')} on PostgreSQL): {outcomes}")
        assert outcomes["empty"] >= 3 and outcomes["restored"] >= 3
        assert outcomes["killed while writing"] >= 3
    finally:
        for t in made:
            t.server.stop()
            if t.schema is not None:
                t.schema.drop()

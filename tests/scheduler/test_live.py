"""Two real server processes over one PostgreSQL store: one leader, failover after a
kill -9, and a kill -9 of the leader in the middle of a rotation run."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from keykeeper.cli.main import app as cli_app
from keykeeper.client import Client
from keykeeper.domain.keys import new_key_id
from keykeeper.store.engine import make_engine
from keykeeper.store.schema import key_events, key_versions, keys
from tests.conftest import PgSchema, pg_available
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow


class Cluster:
    def __init__(self, tmp_path: Path, schema: PgSchema) -> None:
        self.schema = schema
        env = {"KEYKEEPER_SCHEDULER_INTERVAL": "1"}
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        self.a = ServerProcess(data_dir=tmp_path / "a", database_url=schema.url,
                               backend="postgresql", env={**env, "KEYKEEPER_NODE_ID": "node-a"})
        self.a.start()
        self.a.init_and_unseal()
        secret = tmp_path / "passphrase"
        secret.write_text(self.a.passphrase)
        os.chmod(secret, 0o600)
        self.b = ServerProcess(data_dir=tmp_path / "b", database_url=schema.url,
                               backend="postgresql",
                               env={**env, "KEYKEEPER_NODE_ID": "node-b",
                                    "KEYKEEPER_UNSEAL_PASSPHRASE_FILE": str(secret)})
        self.b.start()
        self.b.root_token = self.a.root_token

    def health(self, server: ServerProcess) -> dict[str, object]:
        return dict(server.http.get("/v1/sys/health").json())

    def roles(self) -> dict[str, object]:
        return {str(h["node_id"]): h["scheduler"] for h in map(self.health, (self.a, self.b))}

    def leader(self) -> ServerProcess:
        return self.a if self.health(self.a)["scheduler"] == "leader" else self.b

    def stop(self) -> None:
        self.a.stop()
        self.b.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if reason := pg_available():
        pytest.skip(reason)
    schema = PgSchema()
    c = Cluster(tmp_path, schema)
    try:
        yield c
    finally:
        c.stop()
        schema.drop()


def _wait(cond: Callable[[], bool], seconds: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def test_one_leader_and_failover_after_kill_9(cluster: Cluster) -> None:
    assert _wait(lambda: sorted(map(str, cluster.roles().values())) == ["leader", "standby"],
                 10), cluster.roles()
    health = cluster.health(cluster.a)
    assert health["status"] == "active" and health["initialized"] is True
    leader = cluster.leader()
    standby = cluster.b if leader is cluster.a else cluster.a
    leader_id = cluster.health(leader)["node_id"]
    # The scheduler API: status on any node, run-now only on the leader.
    r = standby.get("/v1/sys/scheduler")
    assert r.status_code == 200 and r.json()["role"] == "standby", r.text
    jobs = {j["name"]: j for j in r.json()["jobs"]}
    assert set(jobs) == {"crypto_periods", "expiry_notices", "rotation", "destruction",
                         "approval_expiry"}
    assert jobs["rotation"]["node"] == leader_id and jobs["rotation"]["interval_seconds"] == 1
    r = standby.post("/v1/sys/scheduler/run", {"job": "rotation"})
    assert r.status_code == 409 and r.json()["code"] == "failed_precondition", r.text
    assert f"node {leader_id} leads" in r.json()["detail"]
    r = leader.post("/v1/sys/scheduler/run", {"job": "rotation"})
    assert r.status_code == 200 and r.json()["outcome"] == "success", r.text
    assert leader.post("/v1/sys/scheduler/run", {"job": "nope"}).status_code == 400
    assert standby.get("/v1/sys/scheduler", token="").status_code == 401
    # The SDK and the CLI over the same routes.
    with Client(addr=leader.addr, token=leader.root_token) as kk:
        status = kk.scheduler_status()
        assert status.role == "leader" and status.node_id == leader_id
        assert kk.run_scheduler_job("approval_expiry").failed == 0
    out = CliRunner().invoke(cli_app, ["--format", "json", "scheduler", "status"],
                             env={"KEYKEEPER_ADDR": standby.addr,
                                  "KEYKEEPER_TOKEN": standby.root_token})
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["role"] == "standby"
    out = CliRunner().invoke(cli_app, ["scheduler", "run", "rotation"],
                             env={"KEYKEEPER_ADDR": standby.addr,
                                  "KEYKEEPER_TOKEN": standby.root_token})
    assert out.exit_code != 0 and "standby" in out.output
    assert leader.proc is not None
    leader.proc.kill()            # SIGKILL: no shutdown, no lock release
    leader.proc.wait(5)
    started = time.monotonic()
    assert _wait(lambda: cluster.health(standby)["scheduler"] == "leader", 15)
    took = time.monotonic() - started
    print(f"standby took over {took:.2f} s after the leader was killed")
    assert took < 10


KEYS = 2000


def _insert_due_keys(url: str, n: int) -> None:
    """``n`` AES keys due for rotation, written straight into the store (metadata and a
    random blob as wrapped material: rotation never unwraps the old version)."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    rows, versions = [], []
    for i in range(n):
        key_id = new_key_id()
        rows.append(dict(id=key_id, namespace="default", name=f"bulk-{i:05d}", purpose="encrypt",
                         algorithm="AES_256_GCM", state="active", primary_version=1,
                         description="", exportable=False, protection="software",
                         created_by="test", created_at=now, updated_at=now,
                         next_rotation_time=now - timedelta(minutes=1)))
        versions.append(dict(key_id=key_id, version=1, state="active",
                             wrapped_material=os.urandom(60), created_at=now))
    with engine.begin() as conn:
        conn.execute(insert(keys), rows)
        conn.execute(insert(key_versions), versions)
    engine.dispose()


def test_kill_9_of_the_leader_during_rotation_loses_and_duplicates_nothing(
        cluster: Cluster) -> None:
    assert _wait(lambda: "leader" in cluster.roles().values(), 10)
    leader = cluster.leader()
    standby = cluster.b if leader is cluster.a else cluster.a
    engine = make_engine(cluster.schema.url)

    def rotated() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(key_versions)
                                    .where(key_versions.c.version == 2)).scalar_one())

    try:
        _insert_due_keys(cluster.schema.url, KEYS)
        assert _wait(lambda: rotated() >= 100, 30, step=0.01)
        assert leader.proc is not None
        leader.proc.kill()
        leader.proc.wait(5)
        at_kill = rotated()
        print(f"killed the leader after {at_kill} of {KEYS} rotations")
        assert at_kill < KEYS, "the run finished before the kill: use more keys"
        killed_at = time.monotonic()
        # Generous: under a loaded CI machine the standby may rotate slowly; the point is
        # that it finishes with nothing lost or duplicated, not how fast.
        assert _wait(lambda: rotated() == KEYS, 240, step=0.2), rotated()
        print(f"the standby finished the other {KEYS - at_kill} rotations "
              f"{time.monotonic() - killed_at:.1f} s after the kill")
        assert cluster.health(standby)["scheduler"] == "leader"
        time.sleep(2.5)   # two more runs: nothing more to do
        with engine.connect() as conn:
            per_key = dict(conn.execute(
                select(key_versions.c.key_id, func.count()).group_by(key_versions.c.key_id)
            ).all())
            versions = {(k, v) for k, v in conn.execute(
                select(key_versions.c.key_id, key_versions.c.version))}
            primaries = dict(conn.execute(select(keys.c.id, keys.c.primary_version)).all())
            next_times = set(conn.execute(select(keys.c.next_rotation_time)).scalars())
            rotate_events = dict(conn.execute(
                select(key_events.c.key_id, func.count()).where(key_events.c.action == "rotate")
                .group_by(key_events.c.key_id)).all())
    finally:
        engine.dispose()
    assert len(per_key) == KEYS and set(per_key.values()) == {2}
    assert versions == {(k, v) for k in primaries for v in (1, 2)}
    assert set(primaries.values()) == {2}
    assert next_times == {None}     # no period: rotated once, not due again
    assert len(rotate_events) == KEYS and set(rotate_events.values()) == {1}

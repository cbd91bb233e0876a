"""Health and the scheduler API of one real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.server import ServerProcess


def test_health_reports_status_role_and_node(live_server: ServerProcess) -> None:
    deadline = time.monotonic() + 10
    while True:
        h = live_server.http.get("/v1/sys/health").json()
        if h["scheduler"] == "leader" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert h["status"] == "active" and h["initialized"] is True and h["sealed"] is False
    assert h["scheduler"] == "leader"      # a single node leads (file lock on SQLite)
    assert h["node_id"] and isinstance(h["version"], str)
    r = live_server.get("/v1/sys/scheduler")
    assert r.status_code == 200 and r.json()["role"] == "leader"
    assert r.json()["node_id"] == h["node_id"]


def test_health_uninitialized_sealed_active_and_scheduler_off(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'k.db'}",
                           env={"KEYKEEPER_SCHEDULER": "off", "KEYKEEPER_NODE_ID": "n-off"})
    server.start()
    try:
        def health() -> dict[str, object]:
            return dict(server.http.get("/v1/sys/health").json())

        assert health()["status"] == "uninitialized"
        assert (health()["scheduler"], health()["node_id"]) == ("disabled", "n-off")
        r = server.http.post("/v1/sys/init", json={})
        server.root_token, server.passphrase = r.json()["root_token"], r.json()[
            "unseal_passphrase"]
        assert health()["status"] == "sealed"
        server.unseal()
        assert health()["status"] == "active"
        r = server.post("/v1/sys/scheduler/run", {"job": "rotation"})
        assert r.status_code == 409 and "disabled" in r.json()["detail"]
        assert server.get("/v1/sys/scheduler").json() == {
            "node_id": "n-off", "role": "disabled", "jobs": []}
    finally:
        server.stop()

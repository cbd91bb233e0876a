"""A real server (uvicorn subprocess, on SQLite and PostgreSQL) with the alert webhook
pointed at a stdlib HTTP server in a thread: steady normal traffic raises no alert, a
synthetic burst of bad decrypts raises failure_burst on GET /v1/alerts and at the webhook
within 5 seconds, the metrics exposition has the new series, key usage counts match the
calls made after the flush, and the CLI lists and acknowledges alerts."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PgSchema, pg_available
from tests.support.server import ServerProcess, b64

pytestmark = pytest.mark.timeout(180)


class Webhook:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                hook.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, webhook: Webhook,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if request.param == "postgresql" and (reason := pg_available()):
        pytest.skip(reason)
    data_dir = tmp_path_factory.mktemp(f"monitor-{request.param}")
    schema = PgSchema() if request.param == "postgresql" else None
    url = schema.url if schema else f"sqlite:///{data_dir / 'kk.db'}"
    srv = ServerProcess(data_dir=data_dir, database_url=url, backend=request.param,
                        env={"KEYKEEPER_ALERT_WEBHOOK": webhook.url})
    webhook.received.clear()
    try:
        srv.start()
        srv.init_and_unseal()
        yield srv
    finally:
        srv.stop()
        if schema:
            schema.drop()


def wait_for(check: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def metric(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    return None


def test_normal_traffic_raises_nothing_and_a_burst_of_bad_decrypts_alerts(
        server: ServerProcess, webhook: Webhook) -> None:
    server.create_key("steady")
    for i in range(40):  # steady normal traffic for ~4 s
        ct = server.post("/v1/keys/steady/encrypt", {"plaintext": b64(b"m%d" % i)})
        assert ct.status_code == 200
        r = server.post("/v1/keys/steady/decrypt", {"ciphertext": ct.json()["ciphertext"]})
        assert r.status_code == 200
        time.sleep(0.1)
    time.sleep(1.0)
    r = server.get("/v1/alerts")
    assert r.status_code == 200 and r.json() == {"alerts": []}
    assert webhook.received == []

    good = server.post("/v1/keys/steady/encrypt", {"plaintext": b64(b"x")}).json()
    bad = good["ciphertext"][:-6] + ("AAAAAA" if not good["ciphertext"].endswith("AAAAAA")
                                     else "BBBBBB")
    for _ in range(12):
        r = server.post("/v1/keys/steady/decrypt", {"ciphertext": bad})
        assert r.status_code == 400 and r.json()["code"] == "decryption_failed"
    burst_end = time.monotonic()

    def listed() -> list[dict[str, Any]]:
        found = server.get("/v1/alerts?rule=failure_burst")
        return [a for a in found.json()["alerts"] if a["subject"] == "principal:root"]

    alerts = wait_for(listed, 5)
    assert alerts, "no failure_burst alert within 5 s"
    hooked = wait_for(lambda: [a for a in webhook.received
                               if a["rule"] == "failure_burst"], 5)
    assert hooked and time.monotonic() - burst_end < 5
    alert = alerts[0]
    assert alert["severity"] == "critical" and alert["state"] == "open"
    assert alert["evidence"]["failures"] >= 10
    assert alert["evidence"]["error_code"] == "decryption_failed"
    assert alert["evidence"]["source"] == "127.0.0.1"
    # The webhook payload is the alert as the API shows it; nothing secret in either.
    sent = next(a for a in hooked if a["subject"] == "principal:root")
    assert sent["id"] == alert["id"] and sent["evidence"] == alert["evidence"]
    assert server.root_token not in json.dumps(webhook.received)
    assert bad not in json.dumps(webhook.received)
    # Audited as an ``alert`` record (the database sink writes a moment later).
    assert wait_for(lambda: [
        rec for rec in server.get("/v1/audit?operation=alert").json()["records"]
        if rec.get("reason") == "failure_burst" and rec.get("principal") is None], 5)
    report = server.post("/v1/audit/verify", {}).json()
    assert report["ok"], report["problems"]
    # More failures within the dedup window: the same alert counts up, no new webhook.
    before = len(webhook.received)
    for _ in range(12):
        server.post("/v1/keys/steady/decrypt", {"ciphertext": bad})
    time.sleep(1.5)
    assert len(webhook.received) == before


def test_metrics_exposition_has_the_monitoring_series(server: ServerProcess) -> None:
    key = server.create_key("metered")
    for _ in range(3):
        assert server.post("/v1/keys/metered/encrypt",
                           {"plaintext": b64(b"x")}).status_code == 200
    assert server.post("/v1/keys/metered/decrypt",
                       {"ciphertext": "nonsense"}).status_code == 400
    # Operations are counted from the audit stream by the monitor thread (every 0.25 s).
    text = wait_for(lambda: (lambda t: t if metric(
        t, "keykeeper_operations_total", key=key["id"], operation="encrypt",
        outcome="success") == 3 else None)(server.get("/metrics").text), 5)
    assert text is not None
    assert metric(text, "keykeeper_operations_total", key=key["id"],
                  operation="key.create", outcome="success") == 1
    assert (metric(text, "keykeeper_operations_total", key="", operation="sys.unseal",
                   outcome="success") or 0) >= 1
    assert (metric(text, "keykeeper_keys", state="active", algorithm="AES_256_GCM",
                   namespace="default") or 0) >= 1
    assert (metric(text, "keykeeper_cache_requests_total", cache="metadata",
                   result="hit") or 0) >= 1
    assert metric(text, "keykeeper_cache_requests_total", cache="handles",
                  result="miss") is not None
    assert metric(text, "keykeeper_sealed") == 0
    assert "keykeeper_request_seconds_bucket" in text
    assert "keykeeper_scheduler_leader" in text


def test_key_usage_counts_match_the_calls_after_the_flush(server: ServerProcess) -> None:
    key = server.create_key("used")
    cts = [server.post("/v1/keys/used/encrypt", {"plaintext": b64(b"a")}).json()["ciphertext"]
           for _ in range(4)]
    for ct in cts[:2]:
        assert server.post("/v1/keys/used/decrypt", {"ciphertext": ct}).status_code == 200
    r = server.post("/v1/keys/used/encrypt", {"items": [{"plaintext": b64(b"b")}] * 3})
    assert r.status_code == 200

    def usage() -> dict[str, Any] | None:
        body = server.get("/v1/keys/used/usage").json()
        ops = {o["operation"]: o["count"] for o in body["operations"]}
        return body if ops.get("encrypt") == 7 and ops.get("decrypt") == 2 else None

    body = wait_for(usage, 8)  # flushed every 5 s
    assert body is not None, server.get("/v1/keys/used/usage").text
    assert body["key_id"] == key["id"]
    [root] = body["principals"]  # every call was root's: create, 7 + 2 uses, usage reads
    assert root["principal"] == "root" and root["count"] >= 10
    assert {v["version"] for v in body["versions"]} >= {1}
    assert body["last_used"] is not None
    assert server.get("/v1/keys/nope/usage").status_code == 404


def test_cli_lists_and_acknowledges_alerts(server: ServerProcess) -> None:
    env = {**os.environ, "KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": server.root_token}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "keykeeper", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    # Its own burst and key: with xdist this test may run without the others of the file.
    name = "cli-" + secrets.token_hex(3)
    good = server.create_key(name)
    ct = server.post(f"/v1/keys/{name}/encrypt", {"plaintext": b64(b"x")}).json()["ciphertext"]
    bad = ct[:-6] + ("AAAAAA" if not ct.endswith("AAAAAA") else "BBBBBB")
    for _ in range(12):
        assert server.post(f"/v1/keys/{name}/decrypt", {"ciphertext": bad}).status_code == 400
    wait_for(lambda: server.get("/v1/alerts?rule=failure_burst").json()["alerts"], 5)
    out = cli("alerts", "--rule", "failure_burst", "--format", "json")
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)["alerts"]
    assert found and {a["rule"] for a in found} == {"failure_burst"}
    out = cli("alerts", "ack", found[0]["id"])
    assert out.returncode == 0, out.stderr
    assert "acknowledged" in out.stdout
    out = cli("alerts", "--state", "acknowledged", "--format", "json")
    assert [a["id"] for a in json.loads(out.stdout)["alerts"]] == [found[0]["id"]]
    out = cli("alerts", "list")
    assert out.returncode == 0 and "failure_burst" in out.stdout
    out = cli("alerts", "ack", "al-missing")
    assert out.returncode == 1 and out.stderr.startswith("error: not_found")
    out = cli("alerts", "usage", name, "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout)["key_id"] == good["id"]
    assert Path(server.data_dir / "server.log").exists()


def test_metrics_need_a_token_allowed_metrics_read(server: ServerProcess) -> None:
    # The series name key ids, namespaces and per-key counts: not for anonymous callers,
    # nor for a principal without metrics.read (as Vault's sys/metrics).
    anonymous = server.http.get("/metrics")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    app = server.post("/v1/principals", {"name": "metrics-app-" + secrets.token_hex(3),
                                         "roles": ["application"]}).json()
    token = server.post("/v1/tokens", {"principal": app["name"]}).json()["token"]
    denied = server.http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")
    assert server.get("/metrics").status_code == 200

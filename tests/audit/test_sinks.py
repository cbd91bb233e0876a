"""The sinks besides the file: syslog (UDP, TCP), HTTP webhook, and the database table with
its query -- several nodes over one database, one verifiable chain each."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from keykeeper.audit.chain import Chain
from keykeeper.audit.sinkspec import SinkSpec, parse_sinks
from keykeeper.audit.syslog_sink import SyslogAuditSink
from keykeeper.audit.verify import Head, line_hash, verify_sources
from keykeeper.audit.webhook_sink import WebhookAuditSink
from keykeeper.custody.keyring import Custody
from keykeeper.errors import InvalidArgument, Unavailable
from keykeeper.service.audit import Auditor, SinkConfig
from keykeeper.service.audit_db import AuditFilter, AuditSearch, DatabaseAuditSink
from keykeeper.service.context import Principal
from keykeeper.service.deps import Deps, utcnow
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.audit.conftest import ctx


def test_sink_list_parsing() -> None:
    assert parse_sinks("file:required,database:best_effort") == [
        SinkSpec("file", "required"), SinkSpec("database", "best_effort")]
    assert parse_sinks("file, syslog:best_effort@5:udp://10.0.0.5:514, "
                       "webhook:required:https://siem.example/a?x=1") == [
        SinkSpec("file"), SinkSpec("syslog", "best_effort", 5.0, "udp://10.0.0.5:514"),
        SinkSpec("webhook", "required", None, "https://siem.example/a?x=1")]
    assert parse_sinks("syslog:tcp://h:601")[0].target == "tcp://h:601"
    assert parse_sinks("none") == []
    for bad in ("", "tape", "file,", "webhook", "database:best_effort",
                "file:required@0", "database:required:x", "none,file"):
        with pytest.raises(ValueError):
            parse_sinks(bad)


def _auditor(*sinks: SinkConfig) -> Auditor:
    custody = Custody()
    custody.unseal(os.urandom(32))
    return Auditor(list(sinks), utcnow, custody=custody, checkpoint_seconds=0)


def test_syslog_udp_and_tcp() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    tcp.settimeout(5)
    a = _auditor(
        SinkConfig(SyslogAuditSink(f"udp://127.0.0.1:{udp.getsockname()[1]}"), "udp"),
        SinkConfig(SyslogAuditSink(f"tcp://127.0.0.1:{tcp.getsockname()[1]}"), "tcp"))
    with a.audited(ctx(), "encrypt"):
        pass
    message = udp.recv(65536)
    assert message.startswith(b"<86>1 ") and b" keykeeper " in message
    record = json.loads(message[message.index(b"{"):])
    assert record["operation"] == "encrypt" and record["seq"] == 1
    conn, _ = tcp.accept()
    framed = conn.recv(65536)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) and rest.startswith(b"<86>1 ")
    conn.close()
    a.close(timeout=2)
    udp.close()
    tcp.close()


def test_syslog_refused_when_required_fails_the_request() -> None:
    a = _auditor(SinkConfig(SyslogAuditSink("tcp://127.0.0.1:1", timeout=0.5), "tcp"))
    with pytest.raises(Exception, match="audit trail cannot record"), \
            a.audited(ctx(), "encrypt"):
        pass
    a.close(timeout=2)


class _Hook(BaseHTTPRequestHandler):
    bodies: list[bytes] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).bodies.append(body)
        self.send_response(type(self).status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"bodies": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/audit", handler
    server.shutdown()
    server.server_close()


def test_webhook_batches_ndjson_and_a_refusal_fails_closed(
        webhook: tuple[str, type[_Hook]]) -> None:
    url, hook = webhook
    a = _auditor(SinkConfig(WebhookAuditSink(url), "hook"))
    for _ in range(3):
        with a.audited(ctx(), "encrypt"):
            pass
    lines = b"".join(hook.bodies).splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [1, 2, 3]
    hook.status = 500
    with pytest.raises(Exception, match="audit trail cannot record"), \
            a.audited(ctx(), "encrypt"):
        pass
    a.close(timeout=2)


def test_webhook_address_is_checked() -> None:
    with pytest.raises(ValueError):
        WebhookAuditSink("ftp://x")
    with pytest.raises(ValueError):
        SyslogAuditSink("carrier-pigeon://x")


@pytest.fixture
def db(database_url: str) -> Iterator[Deps]:
    engine = make_engine(database_url)
    upgrade(engine)
    custody = Custody()
    custody.unseal(b"\x07" * 32)
    yield Deps(engine=engine, custody=custody, clock=utcnow)
    engine.dispose()


def test_nodes_share_the_table_each_chain_verifiable_and_searchable(db: Deps) -> None:
    nodes = []
    for name in ("node-1", "node-2"):
        nodes.append(Auditor([SinkConfig(DatabaseAuditSink(db), "database")], utcnow,
                             custody=db.custody, chain=Chain(name), checkpoint_seconds=0,
                             search=AuditSearch(db)))
    for i in range(12):
        node = nodes[i % 2]
        c = ctx("k-" + ("%032x" % (i % 3)), principal=Principal(f"app-{i % 2}"))
        with node.audited(c, "encrypt" if i % 4 else "key.rotate",
                          mutating=not i % 4):
            pass
    with pytest.raises(Unavailable, match="store is down"), \
            nodes[0].audited(ctx(), "decrypt"):
        raise Unavailable("the store is down")
    for node in nodes:
        node.close(timeout=2)
    search = AuditSearch(db)
    rows, token = search.search(AuditFilter(), page_size=5)
    assert len(rows) == 5 and token
    everything = rows
    while token:
        rows, token = search.search(AuditFilter(), page_size=5, page_token=token)
        everything += rows
    assert len({(r.chain, r.seq) for r in everything}) == len(everything)
    assert {r.chain for r in everything} == {"node-1", "node-2"}
    times = [r.time for r in everything]
    assert times == sorted(times, reverse=True)
    for name in ("node-1", "node-2"):
        lines = [r.record.encode() + b"\n" for r in sorted(
            (r for r in everything if r.chain == name), key=lambda r: r.seq)]
        last = lines[-1].rstrip(b"\n")
        report = verify_sources([(name, lines)], public_key=nodes[0].keys().public_raw,  # type: ignore[union-attr]
                                hmac_key=nodes[0].keys().record_key,  # type: ignore[union-attr]
                                heads={name: Head(name, json.loads(last)["seq"],
                                                  line_hash(last))})
        assert report.ok, [str(p) for p in report.problems]
        head = search.head(name)
        assert head is not None and head.record == last.decode()
    by = search.search
    assert {r.chain for r in by(AuditFilter(principal="app-1"))[0]} == {"node-2"}
    assert len(by(AuditFilter(key_id="k-" + f"{1:032x}"))[0]) == 5  # 4 calls, 1 mutating
    assert {json.loads(r.record)["operation"] for r in by(AuditFilter(operation="key.*"))[0]} \
        == {"key.rotate"}
    errors = by(AuditFilter(outcome="error"))[0]
    assert errors and all(json.loads(r.record)["outcome"] == "error" for r in errors)
    assert by(AuditFilter(outcome="unavailable"))[0]
    assert len(by(AuditFilter(outcome="requested"))[0]) == 3
    future = datetime.now(UTC) + timedelta(hours=1)
    assert by(AuditFilter(since=future))[0] == []
    assert len(by(AuditFilter(until=future, chain="node-1"))[0]) == len(
        [r for r in everything if r.chain == "node-1"])
    oldest = by(AuditFilter(), newest_first=False, page_size=3)
    assert [r.time for r in oldest[0]] == sorted(times)[:3]
    for bad in ("%%%", "bm90anNvbg=="):
        with pytest.raises(InvalidArgument):
            search.search(AuditFilter(), page_token=bad)
    with pytest.raises(InvalidArgument):
        search.search(AuditFilter(), page_size=0)


def test_approving_calls_are_searched_by_execution_and_a_failed_one_as_an_error(
        db: Deps) -> None:
    """The vote that runs an approved request records how the execution ended; a failed
    execution is found by ``outcome=error`` (and its code) though the call succeeded."""
    node = Auditor([SinkConfig(DatabaseAuditSink(db), "database")], utcnow,
                   custody=db.custody, chain=Chain("node-1"), checkpoint_seconds=0,
                   search=AuditSearch(db))
    runs = {"ap-ok_1": "executed", "ap-bad_2": "failed:not_found",
            "ap-bad_3": "failed:failed_precondition", "ap-vote_4": None}
    for approval_id, execution in runs.items():
        c = ctx(principal=Principal("custodian"), approval_id=approval_id,
                execution=execution, on_behalf_of="requester" if execution else None)
        with node.audited(c, "approval.approve", mutating=True):
            pass
    node.close(timeout=2)
    by = AuditSearch(db).search

    def found(**flt: object) -> list[tuple[str, str | None]]:
        docs = [json.loads(r.record) for r in by(AuditFilter(**flt))[0]]  # type: ignore[arg-type]
        return sorted((d["approval_id"], d.get("execution")) for d in docs
                      if d.get("phase") == "response")

    assert found(outcome="error") == [("ap-bad_2", "failed:not_found"),
                                      ("ap-bad_3", "failed:failed_precondition")]
    assert found(outcome="not_found") == [("ap-bad_2", "failed:not_found")]
    assert found(outcome="success") == [("ap-ok_1", "executed"), ("ap-vote_4", None)]
    assert found(execution="failed") == found(outcome="error")
    assert found(execution="failed:not_found") == [("ap-bad_2", "failed:not_found")]
    assert found(execution="failed:not") == []               # a whole code, not a prefix
    assert found(execution="executed") == [("ap-ok_1", "executed")]
    assert found(approval_id="ap-bad_3") == [("ap-bad_3", "failed:failed_precondition")]
    assert found(approval_id="ap-bad_") == []                # "_" is not a wildcard
    docs = [json.loads(r.record) for r in by(AuditFilter(approval_id="ap-bad_2"))[0]]
    assert {d["outcome"] for d in docs} == {"requested", "success"}  # the records as written
    response = next(d for d in docs if d["phase"] == "response")
    assert (response["principal"], response["on_behalf_of"]) == ("custodian", "requester")

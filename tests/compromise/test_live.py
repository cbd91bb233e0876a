"""Compromise response end to end against a live server (both backends), through REST,
the CLI and the SDK: version compromise, the compromise report, rewrap of a JSON Lines
file with --allow-compromised, then destruction of the old version; bulk revocation."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from keykeeper.client import Client
from tests.support.server import ServerProcess, b64, unb64


def cli(server: ServerProcess, *args: str, token: str | None = None) -> Result:
    env = {"KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": token or server.root_token}
    return CliRunner().invoke(app, list(args), env=env, obj=State())


def _key(server: ServerProcess, prefix: str, **fields: Any) -> dict[str, Any]:
    return server.create_key(f"{prefix}-{secrets.token_hex(4)}", **fields)


def _encrypt(server: ServerProcess, key: str, data: bytes,
             context: dict[str, str] | None = None) -> str:
    r = server.post(f"/v1/keys/{key}/encrypt", {"plaintext": b64(data), "context": context})
    assert r.status_code == 200, r.text
    return str(r.json()["ciphertext"])


def _decrypt(server: ServerProcess, key: str, ct: str,
             context: dict[str, str] | None = None, **extra: Any) -> Any:
    return server.post(f"/v1/keys/{key}/decrypt", {"ciphertext": ct, "context": context,
                                                   **extra})


def test_rotate_compromise_rewrap_then_destroy(live_server: ServerProcess,
                                               tmp_path: Path) -> None:
    s = live_server
    key = _key(s, "rw")["id"]
    plain = [f"record {i}".encode() for i in range(4)]
    ctxs: list[dict[str, str] | None] = [None, {"order": "1"}, None, {"order": "3"}]
    old = [_encrypt(s, key, p, c) for p, c in zip(plain, ctxs, strict=True)]
    assert s.post(f"/v1/keys/{key}/rotate").status_code == 200
    r = s.post(f"/v1/keys/{key}/versions/1/compromise", {"reason": "backup tape lost"})
    assert r.status_code == 200 and r.json()["state"] == "compromised", r.text
    assert _decrypt(s, key, old[0]).status_code == 409          # needs allow_compromised

    lines = [json.dumps(old[0]),                                # a bare string
             json.dumps({"ciphertext": old[1], "context": ctxs[1]}),
             json.dumps({"ciphertext": old[2], "key": key}),
             json.dumps({"ciphertext": old[3], "context": ctxs[3]})]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n")

    refused = cli(s, "rewrap", "--in", str(src), "--out", str(out))
    assert refused.exit_code == 1 and "4 of 4 line(s) failed" in refused.stderr
    assert {json.loads(x)["error"]["code"] for x in out.read_text().splitlines()} == {
        "failed_precondition"}

    done = cli(s, "rewrap", "--in", str(src), "--out", str(out), "--allow-compromised")
    assert done.exit_code == 0, done.stderr
    answers = [json.loads(x) for x in out.read_text().splitlines()]
    assert [a["line"] for a in answers] == [1, 2, 3, 4]
    assert {a["key_version"] for a in answers} == {2} and {a["key"] for a in answers} == {key}
    for a, p, c in zip(answers, plain, ctxs, strict=True):
        assert a.get("context") == c
        r = _decrypt(s, key, a["ciphertext"], c)                 # no flag needed any more
        assert r.status_code == 200 and unb64(r.json()["plaintext"]) == p

    r = s.post(f"/v1/keys/{key}/versions/1/destroy")
    assert r.status_code == 200 and r.json()["state"] == "destroyed-compromised", r.text
    (receipt,) = s.get(f"/v1/keys/{key}/receipts").json()["receipts"]
    assert receipt["versions"][0]["state"] == "destroyed-compromised"


def test_rewrap_reports_bad_lines_and_keeps_going(live_server: ServerProcess,
                                                  tmp_path: Path) -> None:
    s = live_server
    key = _key(s, "rwbad")["id"]
    good = _encrypt(s, key, b"fine", {"a": "1"})
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("not json\n"
                   + json.dumps({"ciphertext": good, "context": {"a": "other"}}) + "\n\n"
                   + json.dumps({"nothing": 1}) + "\n"
                   + json.dumps({"ciphertext": good, "context": {"a": "1"}}) + "\n")
    res = cli(s, "rewrap", "--in", str(src), "--out", str(out))
    assert res.exit_code == 1 and "3 of 4 line(s) failed" in res.stderr
    answers = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(a["line"], a.get("error", {}).get("code")) for a in answers] == [
        (1, "invalid_argument"), (2, "decryption_failed"), (4, "invalid_argument"), (5, None)]


def test_sdk_rewrap_many_defaults_to_the_key_in_the_ciphertext(
        live_server: ServerProcess) -> None:
    s = live_server
    key = _key(s, "sdk")["id"]
    cts = [_encrypt(s, key, b"x%d" % i) for i in range(3)]
    s.post(f"/v1/keys/{key}/rotate")
    with Client(s.addr, s.root_token) as kk:
        got = list(kk.rewrap_many([*cts, "garbage"]))
    assert [g.key_version for g in got[:3]] == [2, 2, 2] and all(g.ok for g in got[:3])
    assert got[3].error_code == "invalid_argument" and got[3].index == 3


def test_compromise_time_and_report(live_server: ServerProcess) -> None:
    s = live_server
    key = _key(s, "rep")["id"]
    before = [_encrypt(s, key, b"early") for _ in range(3)]
    time.sleep(0.05)
    happened = datetime.now(UTC)
    time.sleep(0.05)
    _encrypt(s, key, b"late")
    _encrypt(s, key, b"late")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = s.post(f"/v1/keys/{key}/compromise", {"reason": "x", "compromise_time": future})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    r = s.post(f"/v1/keys/{key}/compromise", {"reason": "exfiltrated",
                                              "compromise_time": happened.isoformat()})
    assert r.status_code == 200 and r.json()["state"] == "compromised", r.text
    assert s.post(f"/v1/keys/{key}/encrypt", {"plaintext": b64(b"no")}).status_code == 409
    assert _decrypt(s, key, before[0], allow_compromised=True).status_code == 200

    deadline = time.monotonic() + 10     # the database audit sink writes in batches
    while True:
        r = s.get(f"/v1/keys/{key}/compromise-report")
        assert r.status_code == 200, r.text
        report = r.json()
        if report["totals"]["by_operation"].get("decrypt") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert report["compromise_reason"] == "exfiltrated"
    (root,) = report["principals"]
    assert root["principal"] == "root" and root["by_operation"]["encrypt"] == 6
    assert root["sources"] == ["127.0.0.1"] and root["first_use"] <= root["last_use"]
    flagged = [u["operation"] for u in report["uses_after_compromise"]]
    assert flagged.count("encrypt") == 3 and flagged.count("decrypt") == 1   # 2 + 1 refused
    assert report["totals"]["uses_after_compromise"] == len(flagged)
    assert {u["outcome"] for u in report["uses_after_compromise"]
            if u["operation"] == "encrypt"} == {"success", "failed_precondition"}

    res = cli(s, "key", "compromise-report", key, "--version", "1")
    assert res.exit_code == 0, res.stderr
    assert "root" in res.stdout and "uses after the compromise time" in res.stdout
    r = s.get(f"/v1/keys/{key}/compromise-report?version=7")
    assert r.status_code == 404


def test_bulk_revoke_over_rest_and_cli(live_server: ServerProcess) -> None:
    s = live_server
    ns = f"bulk-{secrets.token_hex(3)}"
    assert s.post("/v1/namespaces", {"name": ns}).status_code == 201
    for i in range(3):
        _key(s, f"k{i}", namespace=ns)
    r = s.post("/v1/keys/revoke", {"reason": "no filter"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    res = cli(s, "key", "revoke", "--namespace", ns, "--dry-run")
    assert res.exit_code == 0 and "3 key(s) match" in res.stdout, res.stderr
    unconfirmed = cli(s, "key", "revoke", "--namespace", ns, "--reason", "inc-9")
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.stderr
    no_filter = cli(s, "key", "revoke", "--reason", "inc-9", "--yes")
    assert no_filter.exit_code == 2 and "at least one filter" in no_filter.stderr
    res = cli(s, "--format", "json", "key", "revoke", "--namespace", ns, "--reason", "inc-9",
              "--yes")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["revoked"] == 3
    listed = s.get(f"/v1/keys?namespace={ns}").json()["keys"]
    assert {k["state"] for k in listed} == {"compromised"}


def test_cli_warns_when_the_compromised_version_is_the_primary(
        live_server: ServerProcess) -> None:
    s = live_server
    name = _key(s, "prim")["name"]
    s.post(f"/v1/keys/{name}/rotate", {})
    old = cli(s, "key", "compromise-version", name, "1", "--reason", "old copy leaked")
    assert old.exit_code == 0 and "primary" not in old.stderr, old.stderr
    res = cli(s, "key", "compromise-version", name, "2", "--reason", "leaked")
    assert res.exit_code == 0, res.stderr
    assert "is the primary version" in res.stderr and f"key rotate default:{name}" in res.stderr


def test_rewrap_moves_data_out_of_a_key_compromised_as_a_whole(
        live_server: ServerProcess, tmp_path: Any) -> None:
    # A compromised key cannot rotate: its data moves to another key (AWS ReEncrypt).
    s = live_server
    old = _key(s, "whole")["name"]
    new = _key(s, "fresh")
    ct = _encrypt(s, old, b"ledger", {"t": "1"})
    assert s.post(f"/v1/keys/{old}/compromise", {"reason": "stolen"}).status_code == 200
    assert s.post(f"/v1/keys/{old}/rotate", {}).status_code == 409
    body = {"ciphertext": ct, "context": {"t": "1"}, "destination_key": new["id"]}
    refused = s.post(f"/v1/keys/{old}/rewrap", body)
    assert refused.json()["code"] == "failed_precondition"
    moved = s.post(f"/v1/keys/{old}/rewrap", {**body, "allow_compromised": True})
    assert moved.status_code == 200, moved.text
    assert moved.json()["ciphertext"].startswith(f"keykeeper:v1:{new['id']}:1:")
    assert unb64(_decrypt(s, new["name"], moved.json()["ciphertext"], {"t": "1"})
                 .json()["plaintext"]) == b"ledger"
    def recorded() -> bool:  # the database copy of the trail is written in batches
        records = s.get(f"/v1/audit?operation=rewrap&key={old}").json()["records"]
        return any(r.get("destination_key_id") == new["id"] and r.get("allow_compromised")
                   for r in records)

    deadline = time.monotonic() + 10
    while not recorded() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert recorded()
    # The CLI form, over a file.
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"ciphertext": ct, "context": {"t": "1"}}) + "\n")
    res = cli(s, "rewrap", "--in", str(src), "--out", str(out), "--allow-compromised",
              "--to-key", new["name"])
    assert res.exit_code == 0, res.stderr
    assert json.loads(out.read_text())["ciphertext"].startswith(f"keykeeper:v1:{new['id']}:")
    # The destination must be an encrypt key the caller may encrypt with.
    mac = s.create_key("mac-" + secrets.token_hex(3), purpose="mac")
    wrong = s.post(f"/v1/keys/{old}/rewrap", {**body, "allow_compromised": True,
                                              "destination_key": mac["id"]})
    assert wrong.json()["code"] == "failed_precondition"
    missing = s.post(f"/v1/keys/{old}/rewrap", {**body, "allow_compromised": True,
                                                "destination_key": "nope-nothing"})
    assert missing.json()["code"] == "not_found"

"""The three seal types on real server processes: init -> seal -> restart -> unseal, the
pkcs11 auto-unseal and its faults on SoftHSM2 tokens, and rekey across every seal type
with keys decrypting and the audit chain verifying throughout. Shares and passphrases are
looked for in the audit log, the server log and the database afterwards."""

from __future__ import annotations

import base64
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerProcess, b64, unb64
from tests.support.softhsm import SoftToken, new_token


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.stop()


def _start(servers: list[ServerProcess], tmp_path: Path, database_url: str,
           env: dict[str, str] | None = None) -> ServerProcess:
    data = tmp_path / "srv"
    data.mkdir(exist_ok=True)
    server = ServerProcess(data_dir=data, database_url=database_url,
                           env={"KEYKEEPER_AUDIT_CHECKPOINT_SECONDS": "3600", **(env or {})})
    servers.append(server)
    server.start()
    return server


def _restart(server: ServerProcess, env: dict[str, str] | None = None) -> None:
    server.stop()
    if env is not None:
        server.extra_env = env
    server.start()


def _health(server: ServerProcess) -> dict[str, Any]:
    return dict(server.http.get("/v1/sys/health").json())


def _unseal(server: ServerProcess, body: dict[str, Any]) -> Any:
    return server.http.post("/v1/sys/unseal", json=body)


def _database_bytes(server: ServerProcess) -> bytes:
    """Every stored byte: the SQLite files, or every row of every PostgreSQL table."""
    if server.database_url.startswith("sqlite"):
        path = Path(server.database_url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(FULL)")
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server.database_url)
    schema = str(url.query["options"]).split("=", 1)[1]
    out = []
    with psycopg.connect(host=url.host, port=url.port, dbname=url.database,
                         user=url.username) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s",
            (schema,))]
        for table in tables:
            for row in conn.execute(f'select * from "{schema}"."{table}"'):
                out.append(repr(row).encode())
    return b"\n".join(out)


def _assert_nowhere(server: ServerProcess, secrets_: list[str]) -> None:
    """Neither the base64 text nor (for shares) the raw bytes of any secret appear in the
    audit log, the server log or the database."""
    places = {"audit log": b"".join(p.read_bytes() for p in server.data_dir.glob("audit*")),
              "server log": (server.data_dir / "server.log").read_bytes(),
              "database": _database_bytes(server)}
    for secret in secrets_:
        needles = [secret.encode()]
        try:
            raw = base64.b64decode(secret, validate=True)
            if len(raw) >= 16:
                needles += [raw, raw.hex().encode()]
        except ValueError:
            pass
        for where, data in places.items():
            for needle in needles:
                assert needle not in data, f"a secret appears in the {where}"


def _encrypt(server: ServerProcess, key: str, text: bytes) -> str:
    r = server.post(f"/v1/keys/{key}/encrypt", {"plaintext": b64(text)})
    assert r.status_code == 200, r.text
    return str(r.json()["ciphertext"])


def _decrypts(server: ServerProcess, key: str, ct: str, text: bytes) -> None:
    r = server.post(f"/v1/keys/{key}/decrypt", {"ciphertext": ct})
    assert r.status_code == 200 and unb64(r.json()["plaintext"]) == text, r.text


def _audit_ok(server: ServerProcess) -> None:
    report = server.post("/v1/audit/verify", {}).json()
    assert report["ok"] is True and report["records"] > 0, report


# -- shamir -------------------------------------------------------------------------------------
def test_shamir_init_unseal_with_progress_restart_and_generate_root(
        servers: list[ServerProcess], tmp_path: Path, database_url: str) -> None:
    server = _start(servers, tmp_path, database_url)
    r = server.http.post("/v1/sys/init", json={"seal": "shamir", "secret_shares": 5,
                                               "secret_threshold": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    keys, server.root_token = body["keys"], body["root_token"]
    assert body["seal_type"] == "shamir" and "unseal_passphrase" not in body
    assert len(keys) == 5 and len(set(keys)) == 5 and all(len(unb64(k)) == 33 for k in keys)
    h = _health(server)
    assert (h["seal_type"], h["sealed"], h["progress"], h["threshold"]) == (
        "shamir", True, 0, 3)
    # The wrong kind of material, a malformed share: clear errors, progress kept.
    r = _unseal(server, {"passphrase": "correct horse battery staple"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), r.text
    assert _unseal(server, {"key": keys[0]}).json()["progress"] == 1
    r = _unseal(server, {"key": keys[0]})
    assert r.status_code == 400 and "already given" in r.json()["detail"], r.text
    for bad in ("not base64!", b64(b"short"), b64(os.urandom(33)[:-1] + b"\x00")):
        r = _unseal(server, {"key": bad})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), r.text
    assert _health(server)["progress"] == 1
    # A stale nonce is refused; reset starts a new attempt.
    nonce = _health(server)["nonce"]
    assert _unseal(server, {"reset": True}).json()["progress"] == 0
    r = _unseal(server, {"key": keys[1], "nonce": nonce})
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition"), r.text
    # A wrong combination: one clear error, and the progress starts over.
    assert _unseal(server, {"key": keys[0]}).json()["progress"] == 1
    assert _unseal(server, {"key": keys[1]}).json()["progress"] == 2
    forged = b64(os.urandom(32) + unb64(keys[2])[-1:])
    r = _unseal(server, {"key": forged})
    assert r.status_code == 400 and "do not combine" in r.json()["detail"], r.text
    assert _health(server)["progress"] == 0 and _health(server)["sealed"] is True
    # Three people, three requests.
    for k in (keys[4], keys[2]):
        assert _unseal(server, {"key": k}).json()["sealed"] is True
    last = _unseal(server, {"key": keys[1]}).json()
    assert last["sealed"] is False and last["progress"] is None
    server.create_key("sh")
    ct = _encrypt(server, "sh", b"under shamir")

    # generate-root takes shares with progress too.
    g = server.http.post("/v1/sys/generate-root", json={"key": keys[3]}).json()
    assert g["complete"] is False and (g["progress"], g["threshold"]) == (1, 3)
    server.http.post("/v1/sys/generate-root", json={"key": keys[0]})
    g = server.http.post("/v1/sys/generate-root", json={"key": keys[4]}).json()
    assert g["complete"] is True and g["root_token"].startswith("kk.")
    assert server.get("/v1/tokens/self", token=g["root_token"]).json()["principal"] == "root"

    assert server.post("/v1/sys/seal").json()["sealed"] is True
    _restart(server)
    assert _health(server)["sealed"] is True
    for k in (keys[3], keys[0], keys[1]):
        h = _unseal(server, {"key": k}).json()
    assert h["sealed"] is False
    _decrypts(server, "sh", ct, b"under shamir")
    _audit_ok(server)
    server.stop()
    _assert_nowhere(server, [*keys, forged])


# -- pkcs11 -------------------------------------------------------------------------------------
def _hsm_key_attributes(token: SoftToken, key_id: bytes) -> dict[str, bool]:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    lib = pkcs11.lib("/usr/lib/softhsm/libsofthsm2.so")
    with lib.get_token(token_label=token.label).open(user_pin=token.pin) as s:
        key = s.get_key(object_class=ObjectClass.SECRET_KEY, id=key_id)
        return {"sensitive": bool(key[Attribute.SENSITIVE]),
                "extractable": bool(key[Attribute.EXTRACTABLE]),
                "token": bool(key[Attribute.TOKEN]), "bits": int(key[Attribute.VALUE_LEN]) * 8}


def _stored_seal(server: ServerProcess) -> dict[str, Any]:
    from keykeeper.store.engine import make_engine
    from keykeeper.store.system import SystemRepository

    engine = make_engine(server.database_url)
    try:
        with engine.connect() as conn:
            return dict(SystemRepository().get_config(conn, "seal"))
    finally:
        engine.dispose()


def test_pkcs11_auto_unseal_and_faults_stay_sealed(
        servers: list[ServerProcess], tmp_path: Path) -> None:
    token = new_token()
    url = f"sqlite:///{tmp_path / 'srv' / 'keykeeper.db'}"
    server = _start(servers, tmp_path, url, token.env)
    r = server.http.post("/v1/sys/init", json={"seal": "pkcs11"})
    assert r.status_code == 200, r.text
    assert r.json()["seal_type"] == "pkcs11" and "keys" not in r.json()
    server.root_token = r.json()["root_token"]
    assert _health(server)["sealed"] is False  # unsealed itself at init
    server.create_key("hk")
    ct = _encrypt(server, "hk", b"anchored in the HSM")
    record = _stored_seal(server)
    assert record["type"] == "pkcs11"
    attrs = _hsm_key_attributes(token, bytes.fromhex(record["key_id"]))
    assert attrs == {"sensitive": True, "extractable": False, "token": True, "bits": 256}
    # Unseal material is refused; generate-root is refused under pkcs11.
    r = _unseal(server, {"passphrase": "a passphrase of some length"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    r = server.http.post("/v1/sys/generate-root", json={})
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition"), r.text

    _restart(server)          # auto-unseal at start
    h = _health(server)
    assert (h["sealed"], h["seal_type"]) == (False, "pkcs11"), h
    _decrypts(server, "hk", ct, b"anchored in the HSM")

    # A wrong PIN: sealed, with the reason; unseal retries and fails closed.
    wrong_pin = tmp_path / "wrong.pin"
    wrong_pin.write_text("not-the-pin\n")
    _restart(server, {**token.env, "KEYKEEPER_PKCS11_PIN_FILE": str(wrong_pin)})
    h = _health(server)
    assert h["sealed"] is True and "refused the login" in h["seal_error"], h
    r = _unseal(server, {})
    assert (r.status_code, r.json()["code"]) == (503, "unavailable"), r.text
    assert server.post("/v1/keys/hk/decrypt", {"ciphertext": ct}).json()["code"] == "sealed"
    # A missing token: sealed, with the reason; no fall-back.
    _restart(server, {**token.env, "KEYKEEPER_PKCS11_TOKEN_LABEL": "kk-no-such-token"})
    h = _health(server)
    assert h["sealed"] is True and "no single PKCS#11 token" in h["seal_error"], h
    # No token configured at all.
    _restart(server, {k: v for k, v in token.env.items() if "PKCS11" not in k})
    h = _health(server)
    assert h["sealed"] is True and "KEYKEEPER_PKCS11" in h["seal_error"], h
    log = (server.data_dir / "server.log").read_text()
    assert "pkcs11 auto-unseal failed" in log and token.pin not in log

    _restart(server, token.env)
    assert _health(server)["sealed"] is False
    _decrypts(server, "hk", ct, b"anchored in the HSM")
    # An operator's seal is not undone by an unauthenticated unseal call.
    assert server.post("/v1/sys/seal").json()["sealed"] is True
    r = _unseal(server, {})
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition"), r.text
    _audit_ok_after_restart(server, token)


def _audit_ok_after_restart(server: ServerProcess, token: SoftToken) -> None:
    _restart(server, token.env)
    _audit_ok(server)


# -- rekey --------------------------------------------------------------------------------------
def _rekey(server: ServerProcess, init: dict[str, Any],
           material: list[dict[str, Any]]) -> dict[str, Any]:
    r = server.post("/v1/sys/rekey/init", init)
    assert r.status_code == 200, r.text
    status = r.json()
    assert status["started"] is True and status["required"] == len(material), status
    steps = material or [{}]      # pkcs11: one update with the nonce alone
    answer: dict[str, Any] = {}
    for i, m in enumerate(steps):
        r = server.http.post("/v1/sys/rekey/update", json={"nonce": status["nonce"], **m})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["complete"] is (i == len(steps) - 1), answer
    return answer


def _wrapped_keks(server: ServerProcess) -> list[bytes]:
    from sqlalchemy import select

    from keykeeper.store.engine import make_engine
    from keykeeper.store.schema import namespaces

    engine = make_engine(server.database_url)
    try:
        with engine.connect() as conn:
            return [bytes(r[0]) for r in conn.execute(select(namespaces.c.wrapped_kek))]
    finally:
        engine.dispose()


def test_rekey_passphrase_shamir_pkcs11_passphrase_keeps_keys_and_audit(
        servers: list[ServerProcess], tmp_path: Path, database_url: str) -> None:
    token = new_token()
    server = _start(servers, tmp_path, database_url, token.env)
    server.init_and_unseal()
    first_passphrase = server.passphrase
    assert server.post("/v1/namespaces", {"name": "team"}).status_code in (200, 201)
    server.create_key("rk")
    server.create_key("rk-team", namespace="team")
    server.create_key("rk-sig", algorithm="ED25519")
    cts = {"rk": _encrypt(server, "rk", b"one"), "team:rk-team": _encrypt(server,
                                                                           "team:rk-team", b"two")}
    sig = server.post("/v1/keys/rk-sig/sign", {"message": b64(b"m")}).json()["signature"]
    keks_before = _wrapped_keks(server)

    def all_work() -> None:
        _decrypts(server, "rk", cts["rk"], b"one")
        _decrypts(server, "team:rk-team", cts["team:rk-team"], b"two")
        v = server.post("/v1/keys/rk-sig/verify", {"message": b64(b"m"), "signature": sig})
        assert v.json()["valid"] is True
        _audit_ok(server)

    # Permission: an application principal may not start a rekey.
    r = server.post("/v1/sys/rekey/init", {"seal": "shamir"}, token="kk.nothing")
    assert r.status_code == 401
    # Wrong current material is refused; a stale nonce too.
    started = server.post("/v1/sys/rekey/init", {"seal": "shamir", "secret_shares": 3,
                                                 "secret_threshold": 2}).json()
    r = server.http.post("/v1/sys/rekey/update", json={"nonce": started["nonce"],
                                                       "passphrase": "wrong passphrase!!"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), r.text
    r = server.http.post("/v1/sys/rekey/update", json={"nonce": "0" * 32,
                                                       "passphrase": first_passphrase})
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition"), r.text
    assert server.request("DELETE", "/v1/sys/rekey/init").json()["started"] is False

    # passphrase -> shamir (3 shares, threshold 2)
    done = _rekey(server, {"seal": "shamir", "secret_shares": 3, "secret_threshold": 2},
                  [{"passphrase": first_passphrase}])
    shares = done["keys"]
    assert done["seal_type"] == "shamir" and len(shares) == 3
    assert _wrapped_keks(server) == keks_before  # same root: nothing re-wrapped
    all_work()
    assert server.post("/v1/sys/seal").json()["sealed"] is True
    r = _unseal(server, {"passphrase": first_passphrase})
    assert r.status_code == 400, r.text
    _unseal(server, {"key": shares[2]})
    assert _unseal(server, {"key": shares[0]}).json()["sealed"] is False
    all_work()

    # shamir -> pkcs11: two of the current shares, one request each
    done = _rekey(server, {"seal": "pkcs11"}, [{"key": shares[1]}, {"key": shares[2]}])
    assert done["seal_type"] == "pkcs11" and not done.get("keys")
    keks = _wrapped_keks(server)
    assert all(k.startswith(b"KKH1") for k in keks if k), keks
    all_work()
    _restart(server, token.env)   # auto-unseal with the token
    assert _health(server)["sealed"] is False
    all_work()

    # pkcs11 -> passphrase (the token is the current material)
    new_passphrase = "a brand new passphrase 42"
    done = _rekey(server, {"seal": "passphrase", "passphrase": new_passphrase}, [])
    assert done["seal_type"] == "passphrase" and "unseal_passphrase" not in done
    assert not any(k.startswith(b"KKH1") for k in _wrapped_keks(server))
    all_work()
    _restart(server, token.env)
    assert _health(server)["sealed"] is True  # no auto-unseal any more
    assert _unseal(server, {"passphrase": new_passphrase}).json()["sealed"] is False
    all_work()
    server.stop()
    _assert_nowhere(server, [*shares, first_passphrase, new_passphrase])

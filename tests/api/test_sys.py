"""Init, seal and unseal, restart: each on a fresh server per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keykeeper import __version__
from tests.support.server import ServerProcess, b64, unb64


@pytest.fixture
def fresh(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir=tmp_path, database_url=database_url)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_init_seal_unseal_cycle(fresh: ServerProcess) -> None:
    health = fresh.http.get("/v1/sys/health").json()
    assert {k: health[k] for k in ("initialized", "sealed", "version", "status")} == {
        "initialized": False, "sealed": True, "version": __version__,
        "status": "uninitialized"}
    # Before init: key routes are sealed, unseal is a failed precondition.
    assert fresh.post("/v1/keys", {"name": "x"}, token="nothing").json()["code"] == "sealed"
    r = fresh.http.post("/v1/sys/unseal", json={"passphrase": "whatever-long-enough"})
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition")

    r = fresh.http.post("/v1/sys/init", json={"passphrase": "correct horse battery staple"})
    assert r.status_code == 200
    token = r.json()["root_token"]
    assert r.json()["unseal_passphrase"] == "correct horse battery staple"
    assert token.startswith("kk.") and len(token) > 40
    # Once only.
    again = fresh.http.post("/v1/sys/init", json={})
    assert (again.status_code, again.json()["code"]) == (409, "already_exists")
    # Still sealed after init, as Vault.
    health = fresh.http.get("/v1/sys/health").json()
    assert health["initialized"] is True and health["sealed"] is True
    r = fresh.post("/v1/keys", {"name": "x"}, token=token)
    assert (r.status_code, r.json()["code"]) == (503, "sealed")

    wrong = fresh.http.post("/v1/sys/unseal", json={"passphrase": "not the passphrase"})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_argument")
    ok = fresh.http.post("/v1/sys/unseal", json={"passphrase": "correct horse battery staple"})
    assert ok.status_code == 200 and ok.json()["sealed"] is False
    assert fresh.post("/v1/keys", {"name": "x"}, token=token).status_code == 201

    # Seal needs a token; then every key route answers 503 sealed.
    assert fresh.post("/v1/sys/seal", token="kk.bogus").status_code == 401
    assert fresh.post("/v1/sys/seal", token=token).json()["sealed"] is True
    r = fresh.post("/v1/keys/x/encrypt", {"plaintext": b64(b"hi")}, token=token)
    assert (r.status_code, r.json()["code"]) == (503, "sealed")
    assert fresh.get("/v1/keys", token=token).status_code == 503


def test_short_passphrase_refused(fresh: ServerProcess) -> None:
    r = fresh.http.post("/v1/sys/init", json={"passphrase": "short"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    assert fresh.http.get("/v1/sys/health").json()["initialized"] is False


def test_restart_keeps_keys_and_old_ciphertexts(fresh: ServerProcess) -> None:
    fresh.init_and_unseal()
    fresh.create_key("persist")
    fresh.create_key("persist-sig", algorithm="ED25519")
    ct1 = fresh.post("/v1/keys/persist/encrypt", {"plaintext": b64(b"version one")}).json()
    assert fresh.post("/v1/keys/persist/rotate").json()["primary_version"] == 2
    ct2 = fresh.post("/v1/keys/persist/encrypt", {"plaintext": b64(b"version two")}).json()
    sig = fresh.post("/v1/keys/persist-sig/sign", {"message": b64(b"m")}).json()["signature"]
    assert fresh.post("/v1/sys/seal").json()["sealed"] is True
    fresh.stop()

    fresh.start()
    assert fresh.http.get("/v1/sys/health").json()["sealed"] is True
    fresh.unseal()
    for ct, expected in ((ct1, b"version one"), (ct2, b"version two")):
        r = fresh.post("/v1/keys/persist/decrypt", {"ciphertext": ct["ciphertext"]})
        assert r.status_code == 200 and unb64(r.json()["plaintext"]) == expected
    v = fresh.post("/v1/keys/persist-sig/verify", {"message": b64(b"m"), "signature": sig})
    assert v.json()["valid"] is True
    # The root token survived the restart (stored hashed) and works again.
    assert fresh.get("/v1/keys/persist").json()["primary_version"] == 2

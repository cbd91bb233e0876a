"""Regressions for what a breaker found (each once a 500, a lockout, a stall or a wrong state)."""

from __future__ import annotations

import base64
import secrets
import stat
import threading
import time
from pathlib import Path

from tests.support.server import ServerProcess, b64


def test_init_refuses_a_passphrase_unseal_would_refuse(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/k.db")
    server.start()
    try:
        r = server.http.post("/v1/sys/init", json={"passphrase": "P" * 1025})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
        assert server.http.get("/v1/sys/health").json()["initialized"] is False
        server.init_and_unseal()
        wrong = server.http.post("/v1/sys/unseal", json={"passphrase": "not it, though long"})
        assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_argument")
        # The database file is readable by its owner only.
        assert stat.S_IMODE((tmp_path / "k.db").stat().st_mode) == 0o600
    finally:
        server.stop()


def test_non_ascii_digits_and_huge_numbers_are_400(live_server: ServerProcess) -> None:
    n = secrets.token_hex(4)
    live_server.create_key(n, algorithm="ED25519")
    for path in (f"/v1/keys/{n}/versions/%C2%B2/destroy", f"/v1/keys/{n}/versions/%D9%A1/destroy"):
        assert live_server.post(path).json()["code"] == "invalid_argument"
    for path in (f"/v1/keys/{n}/public-key?version=%C2%B2", "/v1/keys?page_size=%C2%B2"):
        assert live_server.get(path).json()["code"] == "invalid_argument"
    for period in (9223372036854775808, 10**18, "999999999w", "\u0661\u0662h", "101y"):
        r = live_server.post("/v1/keys", {"name": secrets.token_hex(4), "rotation_period": period})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), period


def test_malformed_page_tokens_are_400(live_server: ServerProcess) -> None:
    for raw in (b"[" * 5000, b'{"a":1,"b":2}', b'["a"]', b'["a", 1]', b"\xff"):
        token = base64.urlsafe_b64encode(raw).decode()
        r = live_server.get(f"/v1/keys?page_token={token}")
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), raw[:10]


def test_names_shaped_like_key_ids_are_refused(live_server: ServerProcess) -> None:
    key = live_server.create_key(secrets.token_hex(4))
    r = live_server.post("/v1/keys", {"name": key["id"]})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")


def test_primary_version_cannot_be_destroyed_in_any_state(live_server: ServerProcess) -> None:
    n = secrets.token_hex(4)
    live_server.create_key(n)
    live_server.post(f"/v1/keys/{n}/disable")
    r = live_server.post(f"/v1/keys/{n}/versions/1/destroy")
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition")
    live_server.post(f"/v1/keys/{n}/enable")
    assert live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")}).status_code == 200


def test_compromise_does_not_cancel_a_scheduled_destruction(live_server: ServerProcess) -> None:
    n = secrets.token_hex(4)
    live_server.create_key(n)
    live_server.post(f"/v1/keys/{n}/schedule-destruction", {"pending_days": 7})
    k = live_server.post(f"/v1/keys/{n}/compromise", {"reason": "leaked"}).json()
    assert k["state"] == "pending-destruction" and k["destruction_time"] and k["compromised_at"]
    assert live_server.post(f"/v1/keys/{n}/cancel-destruction").json()["state"] == "compromised"


def test_rsa_batch_reports_an_oversize_item_alone(live_server: ServerProcess) -> None:
    n = secrets.token_hex(4)
    live_server.create_key(n, algorithm="RSA_OAEP_3072_SHA256")
    r = live_server.post(f"/v1/keys/{n}/encrypt", {"items": [
        {"plaintext": b64(b"a")}, {"plaintext": b64(b"x" * 319)}, {"plaintext": b64(b"c")}]})
    assert r.status_code == 200
    items = r.json()["items"]
    assert items[0]["key_version"] == 1 and items[2]["key_version"] == 1
    assert items[1]["error"]["code"] == "invalid_argument"


def test_a_heavy_batch_does_not_stall_other_requests(live_server: ServerProcess) -> None:
    n = secrets.token_hex(4)
    live_server.create_key(n, algorithm="RSA_OAEP_4096_SHA256")
    one = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")}).json()["ciphertext"]
    done: list[float] = []

    def batch() -> None:
        started = time.monotonic()
        ServerProcess.request(live_server, "POST", f"/v1/keys/{n}/decrypt",
                              {"items": [{"ciphertext": one}] * 1000})
        done.append(time.monotonic() - started)

    import httpx
    thread = threading.Thread(target=batch)
    thread.start()
    time.sleep(0.2)
    worst = 0.0
    with httpx.Client(base_url=live_server.addr, timeout=10) as probe:
        while thread.is_alive():
            started = time.monotonic()
            assert probe.get("/v1/sys/health").status_code == 200
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.05)
    thread.join()
    assert done and done[0] > 0.5  # the batch was long enough to matter
    # Run inline, the batch would hold every other request for nearly its whole duration.
    assert worst < done[0] / 3


def test_trailing_slash_is_a_plain_404(live_server: ServerProcess) -> None:
    n = secrets.token_hex(4)
    live_server.create_key(n)
    r = live_server.request("POST", f"/v1/keys/{n}/encrypt/", {"plaintext": b64(b"x")},
                            headers={"Host": "evil.example"})
    assert r.status_code == 404 and "location" not in r.headers
    assert r.json()["code"] == "not_found" and r.json()["request_id"] != "-"

"""Review of the seal providers (issue 6 §1) over REST against a real server, both backends:
bad nonces, shares that race the threshold, and a seal in the middle of a rekey."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess


@pytest.fixture
def shamir(tmp_path: Path, database_url: str) -> Iterator[tuple[ServerProcess, list[str]]]:
    """A fresh server initialised with a shamir seal of 20 shares, threshold 2 (sealed)."""
    server = ServerProcess(data_dir=tmp_path, database_url=database_url)
    try:
        server.start()
        r = server.http.post("/v1/sys/init", json={"seal": "shamir", "secret_shares": 20,
                                                   "secret_threshold": 2})
        assert r.status_code == 200, r.text
        server.root_token = r.json()["root_token"]
        yield server, list(r.json()["keys"])
    finally:
        server.stop()


def _unseal(server: ServerProcess, body: dict[str, Any]) -> httpx.Response:
    return server.http.post("/v1/sys/unseal", json=body)


def _refused(r: httpx.Response, status: int, code: str) -> None:
    assert (r.status_code, r.json()["code"]) == (status, code), r.text


def test_a_non_ascii_nonce_is_a_stale_nonce_not_a_500(
        shamir: tuple[ServerProcess, list[str]]) -> None:
    server, keys = shamir
    assert _unseal(server, {"key": keys[0]}).json()["progress"] == 1
    _refused(_unseal(server, {"key": keys[1], "nonce": "é"}), 409, "failed_precondition")
    r = server.http.post("/v1/sys/generate-root", json={"key": keys[1], "nonce": "nonce-ü"})
    _refused(r, 409, "failed_precondition")
    assert server.http.get("/v1/sys/health").json()["progress"] == 1  # kept
    assert _unseal(server, {"key": keys[1]}).json()["sealed"] is False
    assert server.post("/v1/sys/rekey/init", {"seal": "shamir"}).status_code == 200
    r = server.http.post("/v1/sys/rekey/update", json={"nonce": "ñ", "key": keys[0]})
    _refused(r, 409, "failed_precondition")
    assert server.get("/v1/sys/rekey/init").json()["progress"] == 0


def test_shares_that_race_the_threshold_are_not_kept(
        shamir: tuple[ServerProcess, list[str]]) -> None:
    server, keys = shamir
    clients = [httpx.Client(base_url=server.addr, timeout=30.0) for _ in keys]
    try:
        with concurrent.futures.ThreadPoolExecutor(len(keys)) as pool:
            for _ in range(10):  # a race: several rounds, so that one is likely to show it
                answers = list(pool.map(
                    lambda ck: ck[0].post("/v1/sys/unseal", json={"key": ck[1]}),
                    zip(clients, keys, strict=True)))
                assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
                assert server.http.get("/v1/sys/health").json()["sealed"] is False
                assert server.post("/v1/sys/seal").json()["sealed"] is True
                # Sealed again: the next attempt starts from nothing, not from shares given
                # (to an attempt that had already completed) before the seal.
                health = server.http.get("/v1/sys/health").json()
                assert (health["sealed"], health["progress"]) == (True, 0), health
    finally:
        for c in clients:
            c.close()
    assert _unseal(server, {"key": keys[0]}).json()["progress"] == 1


def test_sealing_cancels_a_rekey_in_progress(shamir: tuple[ServerProcess, list[str]]) -> None:
    server, keys = shamir
    for k in keys[:2]:
        _unseal(server, {"key": k})
    started = server.post("/v1/sys/rekey/init", {"seal": "shamir", "secret_shares": 3,
                                                 "secret_threshold": 2}).json()
    r = server.http.post("/v1/sys/rekey/update", json={"nonce": started["nonce"],
                                                       "key": keys[5]})
    assert r.status_code == 200 and r.json()["progress"] == 1, r.text
    assert server.post("/v1/sys/seal").json()["sealed"] is True
    for k in keys[2:4]:
        _unseal(server, {"key": k})
    status = server.get("/v1/sys/rekey/init").json()
    assert (status["started"], status["progress"]) == (False, 0), status
    # The old attempt cannot be finished with its nonce: the share given to it is gone.
    r = server.http.post("/v1/sys/rekey/update", json={"nonce": started["nonce"],
                                                       "key": keys[6]})
    _refused(r, 409, "failed_precondition")

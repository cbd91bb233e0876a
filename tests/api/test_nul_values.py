"""NUL characters and out-of-range numbers are the caller's error (400), on both stores:
PostgreSQL text cannot hold NUL, and neither store holds integers beyond 64 bits."""

from __future__ import annotations

import pytest

from tests.support.server import ServerProcess


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/v1/principals/a%00b", None),
    ("PATCH", "/v1/principals/a%00b", {"kind": "person"}),
    ("DELETE", "/v1/roles/a%00b", None),
    ("GET", "/v1/tokens?principal=%00", None),
    ("POST", "/v1/tokens", {"principal": "\u0000"}),
    ("GET", "/v1/keys?label=a%3D%00", None),
    ("GET", "/v1/audit?principal=%00", None),
    ("GET", "/v1/keys/a%00b", None),
])
def test_nul_is_invalid_argument(live_server: ServerProcess, method: str, path: str,
                                 body: object) -> None:
    r = live_server.request(method, path, body)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), r.text

"""A fixture for the tests that drive the server as a KMIP client would: the approval
policy of a server that serves KMIP clients (docs/kmip-conformance.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kmip.conftest import KmipServer

__all__ = ["kmip_operator_policy"]


@pytest.fixture(scope="module")
def kmip_operator_policy(kmip_server: KmipServer) -> Iterator[None]:
    """The approval policy of a server that serves KMIP clients: key operations outside
    dual control (a KMIP request cannot wait for approvals; keykeeper's default policy
    puts destroy, export and compromise under dual control). Restored afterwards."""
    r = kmip_server.rest.get("/v1/policies/approval")
    assert r.status_code == 200, r.text
    original = r.json()
    rules = []
    for rule in original["rules"]:
        ops = [op for op in rule["operations"] if not op.startswith("key.")]
        if ops:
            rules.append({**rule, "operations": ops})
    r = kmip_server.rest.put("/v1/policies/approval", json={"rules": rules})
    assert r.status_code == 200, r.text
    yield
    r = kmip_server.rest.put("/v1/policies/approval", json=original)
    assert r.status_code == 200, r.text

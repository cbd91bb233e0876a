"""Wycheproof HMAC vectors through load_private / mac / verify_mac.

Full-length tags: valid cases match, invalid ones are refused. Truncated-tag groups:
keykeeper never accepts a truncated tag, so verify_mac must return False for every case.
Keys of another size than the spec's (32/48/64 bytes) are outside our material format.
"""

from __future__ import annotations

from typing import Any

import pytest

from keykeeper.crypto import get_spec, load_private
from keykeeper.errors import InvalidArgument

from .wycheproof_loader import h, params

FILES = {
    "HMAC_SHA256": "hmac_sha256_test.json",
    "HMAC_SHA384": "hmac_sha384_test.json",
    "HMAC_SHA512": "hmac_sha512_test.json",
}


def _cases() -> list[Any]:
    out = []
    for name, filename in FILES.items():
        for p in params(filename):
            out.append(pytest.param(name, *p.values, id=f"{name}-{p.id}", marks=p.marks))
    return out


@pytest.mark.parametrize(("name", "group", "case"), _cases())
def test_hmac(name: str, group: dict[str, Any], case: dict[str, Any]) -> None:
    spec = get_spec(name)
    key, msg, tag = h(case["key"]), h(case["msg"]), h(case["tag"])
    if len(key) * 8 != spec.key_bits:
        with pytest.raises(InvalidArgument):
            load_private(spec, key)
        return
    handle = load_private(spec, key)
    full = group["tagSize"] == spec.key_bits
    if not full:
        assert handle.verify_mac(msg, tag) is False
        if case["result"] == "valid":
            assert handle.mac(msg)[: len(tag)] == tag
        return
    if case["result"] == "valid":
        assert handle.mac(msg) == tag
        assert handle.verify_mac(msg, tag) is True
    elif case["result"] == "invalid":
        assert handle.verify_mac(msg, tag) is False

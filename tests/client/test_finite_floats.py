"""NaN and Infinity never leave the SDK: msgspec writes them as JSON null, and null in a
PATCH means "reset to the default". Every float the SDK sends is refused first, with
InvalidArgument naming the field, and no request is made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keykeeper.client import Client
from keykeeper.errors import InvalidArgument, NotFound
from tests.support.scripted import Server

BAD = [float("nan"), float("inf"), float("-inf")]

CALLS: list[tuple[str, Callable[[Client, float], Any]]] = [
    ("usage_rotate_fraction", lambda c, v: c.update_key("k", usage_rotate_fraction=v)),
    ("usage_rotate_fraction", lambda c, v: c.create_key("k", usage_rotate_fraction=v)),
    ("rate_limit", lambda c, v: c.create_namespace("ns", rate_limit=v)),
    ("rate_limit", lambda c, v: c.update_namespace("ns", rate_limit=v)),
    ("rate_limit", lambda c, v: c.create_principal("p", rate_limit=v)),
    ("rate_limit", lambda c, v: c.update_principal("p", rate_limit=v)),
]


@pytest.mark.parametrize("value", BAD, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(("field", "call"), CALLS)
def test_non_finite_floats_are_refused_before_sending(
        client: Client, server: Server, field: str, call: Callable[[Client, float], Any],
        value: float) -> None:
    with pytest.raises(InvalidArgument, match=f"^{field} must be a finite number"):
        call(client, value)
    assert server.requests == []


def test_a_nested_field_is_named(client: Client, server: Server) -> None:
    with pytest.raises(InvalidArgument, match=r"^items\[1\]\.x must be a finite number"):
        client._http.call("POST", "/v1/x", dict, body={"items": [{"x": 1.0}, {"x": 1e400}]})
    assert server.requests == []


def test_finite_floats_are_sent(client: Client, server: Server) -> None:
    server.problem("not_found", 404)
    with pytest.raises(NotFound):
        client.update_key("k", usage_rotate_fraction=0.5)
    assert server.last_json() == {"usage_rotate_fraction": 0.5}

"""Lifecycle settings over REST against a live server, on both backends: every field on
create, PATCH (keep vs clear) and the views, activate and trim, and bad input answering
400 invalid_argument with a message naming the field (never 500)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.server import ServerProcess, b64

DAY = 86400
YEAR = 365 * DAY


def name() -> str:
    return "lc-" + secrets.token_hex(4)


def at(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat(timespec="seconds") \
        .replace("+00:00", "Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def patch(server: ServerProcess, key: str, body: dict[str, Any]) -> Any:
    return server.request("PATCH", f"/v1/keys/{key}", body)


def bad(r: Any, field: str, status: int = 400, code: str = "invalid_argument") -> None:
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert field in r.json()["detail"], r.json()["detail"]


def test_create_with_every_lifecycle_field(live_server: ServerProcess) -> None:
    n = name()
    key = live_server.create_key(
        n, activation_date=at(days=2), deactivation_date=at(days=400), rotation_period="30d",
        usage_limit=1000, usage_rotate_fraction=0.5, originator_usage_period="365d",
        recipient_usage_period=2 * YEAR)
    assert key["state"] == "pre-active"
    assert parse(key["next_rotation_time"]) == parse(key["activation_date"]) + timedelta(
        days=30)
    assert (key["usage_limit"], key["usage_rotate_fraction"], key["rotation_threshold"]) == (
        1000, 0.5, 500)
    assert (key["originator_usage_period"], key["recipient_usage_period"]) == (YEAR, 2 * YEAR)
    assert key["deactivation_date"] is not None and key["rotation_reason"] is None
    assert (key["min_encryption_version"], key["min_decryption_version"]) == (0, 0)
    assert live_server.get(f"/v1/keys/{n}").json() == key
    listed = live_server.get("/v1/keys?page_size=1000").json()["keys"]
    assert [k for k in listed if k["name"] == n] == [key]
    r = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")})
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition")
    assert "pre-active" in r.json()["detail"]


def test_defaults_in_the_view(live_server: ServerProcess) -> None:
    gcm = live_server.create_key(name())
    assert gcm["state"] == "active" and gcm["activation_date"] is None
    assert (gcm["usage_limit"], gcm["rotation_threshold"]) == (2 ** 32, 3865470566)
    assert (gcm["originator_usage_period"], gcm["recipient_usage_period"]) == (
        2 * YEAR, 5 * YEAR)
    signing = live_server.create_key(name(), purpose="sign")
    assert signing["usage_limit"] is None and signing["rotation_threshold"] is None
    assert (signing["originator_usage_period"], signing["recipient_usage_period"]) == (
        3 * YEAR, 6 * YEAR)
    past = live_server.create_key(name(), activation_date=at(days=-1))
    assert past["state"] == "active"


def test_versions_view(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n, originator_usage_period="100d", recipient_usage_period="200d")
    live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")})
    (v,) = live_server.get(f"/v1/keys/{n}/versions").json()["versions"]
    assert v["protect_count"] >= 1
    created = parse(v["created_at"])
    assert parse(v["originator_usage_end"]) == created + timedelta(days=100)
    assert parse(v["recipient_usage_end"]) == created + timedelta(days=200)
    assert (v["deactivated_at"], v["compromised_at"], v["compromise_reason"]) == (
        None, None, None)


def test_activate(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n, activation_date=at(days=30), rotation_period="7d")
    r = live_server.post(f"/v1/keys/{n}/activate")
    assert r.status_code == 200 and r.json()["state"] == "active"
    key = r.json()
    assert parse(key["next_rotation_time"]) == parse(key["activation_date"]) + timedelta(days=7)
    assert live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")}).status_code \
        == 200
    again = live_server.post(f"/v1/keys/{n}/activate")
    bad(again, "pre-active", 409, "failed_precondition")


def test_patch_keeps_what_is_left_out_and_clears_null(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n, rotation_period="30d", usage_limit=100,
                           usage_rotate_fraction=0.5, originator_usage_period="100d")
    key = patch(live_server, n, {"description": "only this"}).json()
    # One transaction: a bad field refuses the whole PATCH.
    bad(patch(live_server, n, {"description": "not this", "usage_limit": 0}), "usage_limit")
    assert (key["rotation_period"], key["usage_limit"], key["usage_rotate_fraction"],
            key["originator_usage_period"]) == (30 * DAY, 100, 0.5, 100 * DAY)
    key = patch(live_server, n, {"rotation_period": None, "usage_limit": None,
                                 "usage_rotate_fraction": None,
                                 "originator_usage_period": None}).json()
    assert key["rotation_period"] is None and key["next_rotation_time"] is None
    assert (key["usage_limit"], key["usage_rotate_fraction"]) == (2 ** 32, 0.9)
    assert key["originator_usage_period"] == 2 * YEAR
    assert key["description"] == "only this"
    before = datetime.now(UTC)
    key = patch(live_server, n, {"rotation_period": "2d"}).json()
    assert key["rotation_period"] == 2 * DAY
    assert parse(key["next_rotation_time"]) >= before.replace(microsecond=0) + timedelta(
        days=2)
    when = at(days=5)
    key = patch(live_server, n, {"next_rotation_time": when}).json()
    assert key["next_rotation_time"] == when and key["rotation_period"] == 2 * DAY
    key = patch(live_server, n, {"recipient_usage_period": "3000d",
                                 "deactivation_date": at(days=90)}).json()
    assert key["recipient_usage_period"] == 3000 * DAY and key["deactivation_date"]
    key = patch(live_server, n, {"deactivation_date": None}).json()
    assert key["deactivation_date"] is None


def test_min_versions_and_trim(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n)
    old = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"v1")}).json()
    for _ in range(3):
        live_server.post(f"/v1/keys/{n}/rotate")
    bad(patch(live_server, n, {"min_decryption_version": 5}), "min_decryption_version")
    bad(patch(live_server, n, {"min_decryption_version": -1}), "min_decryption_version")
    bad(patch(live_server, n, {"min_decryption_version": 3, "min_encryption_version": 2}),
        "min_encryption_version")
    key = patch(live_server, n, {"min_decryption_version": 2, "min_encryption_version": 3})
    assert (key.json()["min_decryption_version"], key.json()["min_encryption_version"]) == (2, 3)
    bad(live_server.post(f"/v1/keys/{n}/trim", {"min_available_version": 3}),
        "min_decryption_version")
    bad(live_server.post(f"/v1/keys/{n}/trim", {"min_available_version": 0}),
        "min_available_version")
    bad(live_server.post(f"/v1/keys/{n}/trim", {"min_available_version": 9}), "primary")
    r = live_server.post(f"/v1/keys/{n}/trim", {"min_available_version": 2})
    assert r.status_code == 200, r.text  # the root token passes dual control
    versions = live_server.get(f"/v1/keys/{n}/versions").json()["versions"]
    assert [(v["version"], v["state"]) for v in versions] == [
        (1, "destroyed"), (2, "active"), (3, "active"), (4, "active")]
    assert versions[0]["destroyed_at"] is not None
    dec = live_server.post(f"/v1/keys/{n}/decrypt", {"ciphertext": old["ciphertext"]})
    assert (dec.status_code, dec.json()["code"]) == (409, "failed_precondition")
    key = patch(live_server, n, {"min_encryption_version": 0, "min_decryption_version": None})
    assert (key.json()["min_decryption_version"], key.json()["min_encryption_version"]) == (0, 0)


def test_activation_date_only_while_pre_active(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n, activation_date=at(days=10))
    key = patch(live_server, n, {"activation_date": at(days=20)}).json()
    assert key["state"] == "pre-active"
    bad(patch(live_server, n, {"activation_date": None}), "activation_date")
    bad(patch(live_server, n, {"deactivation_date": at(days=15)}), "deactivation_date")
    key = patch(live_server, n, {"activation_date": at(days=-1)}).json()
    assert key["state"] == "active"
    bad(patch(live_server, n, {"activation_date": at(days=3)}), "pre-active", 409,
        "failed_precondition")


@pytest.mark.parametrize(("body", "field"), [
    ({"usage_limit": 0}, "usage_limit"),
    ({"usage_limit": 2 ** 32 + 1}, "usage_limit"),
    ({"usage_limit": "many"}, "usage_limit"),
    ({"usage_rotate_fraction": 0}, "usage_rotate_fraction"),
    ({"usage_rotate_fraction": 1.5}, "usage_rotate_fraction"),
    ({"rotation_period": "10m"}, "rotation_period"),
    ({"rotation_period": "soon"}, "rotation_period"),
    ({"originator_usage_period": "30m"}, "originator_usage_period"),
    ({"originator_usage_period": "400d", "recipient_usage_period": "100d"},
     "recipient_usage_period"),
    ({"activation_date": "tomorrow"}, "activation_date"),
    ({"activation_date": "2030-01-01T00:00:00"}, "activation_date"),
    ({"deactivation_date": "2020-01-01T00:00:00Z"}, "deactivation_date"),
    ({"activation_date": "2031-01-01T00:00:00Z",
      "deactivation_date": "2030-06-01T00:00:00Z"}, "deactivation_date"),
])
def test_bad_create_input(live_server: ServerProcess, body: dict[str, Any],
                          field: str) -> None:
    bad(live_server.post("/v1/keys", {"name": name(), **body}), field)


def test_usage_limit_above_2_32_is_fine_where_nonces_are_not_random(
        live_server: ServerProcess) -> None:
    key = live_server.create_key(name(), purpose="mac", usage_limit=2 ** 40)
    assert key["usage_limit"] == 2 ** 40


@pytest.mark.parametrize(("body", "field"), [
    ({"usage_limit": 0}, "usage_limit"),
    ({"usage_limit": True}, "usage_limit"),
    ({"usage_rotate_fraction": -0.1}, "usage_rotate_fraction"),
    ({"rotation_period": 59}, "rotation_period"),
    ({"next_rotation_time": "2020-01-01T00:00:00Z"}, "next_rotation_time"),
    ({"next_rotation_time": 5}, "next_rotation_time"),
    ({"min_encryption_version": 2}, "min_encryption_version"),
    ({"min_decryption_version": "one"}, "min_decryption_version"),
    ({"recipient_usage_period": "1h", "originator_usage_period": "2h"},
     "recipient_usage_period"),
    ({"activation_date": "2031-01-01T00:00:00Z"}, "pre-active"),
    ({"deactivation_date": "2001-01-01T00:00:00Z"}, "deactivation_date"),
    ({"unknown_field": 1}, "unknown_field"),
])
def test_bad_patch_input(live_server: ServerProcess, body: dict[str, Any],
                         field: str) -> None:
    n = name()
    live_server.create_key(n)
    r = patch(live_server, n, body)
    assert r.status_code in (400, 409) and r.status_code != 500, r.text
    assert field in r.json()["detail"], r.json()["detail"]


def test_bad_trim_input(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n)
    for body in ({}, {"min_available_version": "2"}, {"min_available_version": 1.5},
                 {"min_available_version": 1, "extra": 1}):
        r = live_server.post(f"/v1/keys/{n}/trim", body)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), r.text
    missing = live_server.post("/v1/keys/nowhere-at-all/trim", {"min_available_version": 1})
    assert missing.status_code == 404


def test_namespace_lifecycle_defaults(live_server: ServerProcess) -> None:
    ns = "ns-" + secrets.token_hex(4)
    r = live_server.post("/v1/namespaces", {"name": ns, "rotation_period": "90d",
                                            "originator_usage_period": "365d",
                                            "recipient_usage_period": "1000d"})
    assert r.status_code == 201, r.text
    assert (r.json()["rotation_period"], r.json()["originator_usage_period"],
            r.json()["recipient_usage_period"]) == (90 * DAY, 365 * DAY, 1000 * DAY)
    key = live_server.create_key(name(), namespace=ns)
    assert key["rotation_period"] == 90 * DAY
    assert (key["originator_usage_period"], key["recipient_usage_period"]) == (
        365 * DAY, 1000 * DAY)
    got = live_server.get(f"/v1/namespaces/{ns}").json()
    assert got["rotation_period"] == 90 * DAY
    upd = live_server.request("PATCH", f"/v1/namespaces/{ns}", {"rotation_period": None,
                                                                "description": "d"})
    assert upd.status_code == 200 and "rotation_period" not in upd.json()
    assert upd.json()["originator_usage_period"] == 365 * DAY
    bad(live_server.request("PATCH", f"/v1/namespaces/{ns}",
                            {"recipient_usage_period": "10d"}), "recipient_usage_period")
    bad(live_server.request("PATCH", f"/v1/namespaces/{ns}", {"rotation_period": "1m"}),
        "rotation_period")
    bad(live_server.post("/v1/namespaces", {"name": "ns-" + secrets.token_hex(4),
                                            "originator_usage_period": "soon"}),
        "originator_usage_period")

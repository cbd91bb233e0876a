"""The SDK's HTTP mapping: request shapes, base64, answers, errors (MockTransport only)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

import keykeeper.client
from keykeeper import errors
from keykeeper.client import (
    Client,
    ConnectionFailed,
    DataKey,
    DecryptItem,
    DecryptResult,
    EncryptItem,
    EncryptResult,
    InitResult,
    ItemError,
)
from tests.support.scripted import KEY_JSON, Server


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_public_names_are_exactly_the_intended_ones() -> None:
    assert sorted(keykeeper.client.__all__) == sorted(
        [
            "DEFAULT_ADDR",
            "Client",
            "ConnectionFailed",
            "DataKey",
            "Decapsulation",
            "DecryptItem",
            "DecryptResult",
            "Encapsulation",
            "EncryptItem",
            "EncryptResult",
            "Health",
            "GeneratedRoot", "InitResult",
            "ItemError",
            "Key",
            "KeyPage",
            "KeyVersion",
            "MacResult",
            "PublicKey",
            "SignResult",
            "VerifyResult",
            # access control (issue 3)
            "Grant",
            "GrantDeleted",
            "NewToken",
            "Principal",
            "PrincipalDeleted",
            "Role",
            "RoleDeleted",
            "TokenInfo",
            "WhoAmI",
            # dual control and namespaces (issue 3)
            "Approval",
            "ApprovalPage",
            "ApprovalPolicy",
            "ApprovalRule",
            "ApprovalVote",
            "Namespace",
            "NamespaceDeletion",
            # audit (issue 3)
            "AuditChainSummary",
            "AuditHead",
            "AuditPage",
            "AuditProblem",
            "AuditRecord",
            "AuditReport",
            # lifecycle and monitoring (issue 4)
            "Alert",
            "AlertPage",
            "KeyUsage",
            "UsageCount",
            "BulkRevokeResult",
            "CompromisedVersion",
            "CompromiseReport",
            "PrincipalUsage",
            "RevokeError",
            "RekeyStatus",
            "RekeyUpdate",
            "ExportedKey",
            "ImportParameters",
            "RewrapOutcome",
            "UsageTotals",
            "JobRun",
            "JobRunResult",
            "SchedulerStatus",
            # backups (issue 7)
            "BackupCreated",
            "BackupRestored",
            "BackupSigningKey",
            "decrypt_stream",
            "encrypt_stream",
        ]
    )
    for name in keykeeper.client.__all__:
        assert hasattr(keykeeper.client, name)


def test_client_has_one_method_per_route() -> None:
    routes = [
        "health",
        "init",
        "unseal",
        "seal",
        "create_key",
        "list_keys",
        "iter_keys",
        "get_key",
        "update_key",
        "list_versions",
        "rotate_key",
        "disable_key",
        "enable_key",
        "schedule_destruction",
        "cancel_destruction",
        "compromise_key",
        "destroy_version",
        "encrypt",
        "decrypt",
        "encrypt_batch",
        "decrypt_batch",
        "rewrap",
        "generate_data_key",
        "sign",
        "verify",
        "mac",
        "verify_mac",
        "get_public_key",
        "encapsulate",
        "decapsulate",
        "random",
    ]
    for name in routes:
        assert callable(getattr(Client, name)), name


def test_env_defaults(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    monkeypatch.setenv("KEYKEEPER_ADDR", "http://env.test:9/")
    monkeypatch.setenv("KEYKEEPER_TOKEN", "envtok")
    server.reply({"initialized": True, "sealed": False, "version": "0.1.0"})
    server.reply(KEY_JSON)
    with Client(transport=httpx.MockTransport(server.handler)) as c:
        assert c.addr == "http://env.test:9"
        c.health()
        assert "authorization" not in server.last.headers
        c.get_key("orders")
    assert str(server.last.url) == "http://env.test:9/v1/keys/orders"
    assert server.last.headers["authorization"] == "Bearer envtok"


def test_default_addr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYKEEPER_ADDR", raising=False)
    with Client() as c:
        assert c.addr == "http://127.0.0.1:8200"


def test_create_key_sends_only_given_fields(client: Client, server: Server) -> None:
    server.reply(KEY_JSON, status=201)
    key = client.create_key("orders", purpose="encrypt", rotation_period="90d", labels={"a": "b"})
    assert server.last.method == "POST"
    assert server.last.url.path == "/v1/keys"
    assert server.last_json() == {
        "name": "orders",
        "purpose": "encrypt",
        "rotation_period": "90d",
        "labels": {"a": "b"},
    }
    assert key.id == "k_01" and key.labels == {"team": "a"}
    assert key.created_at.year == 2025 and key.created_at.tzinfo is not None


def test_create_key_accepts_namespace_in_the_name(client: Client, server: Server) -> None:
    server.reply(KEY_JSON, status=201)
    client.create_key("payments:cards")
    assert server.last_json() == {"name": "cards", "namespace": "payments"}
    server.reply(KEY_JSON, status=201)
    client.create_key("a:b", namespace="ns")  # an explicit namespace wins; the server judges
    assert server.last_json() == {"name": "a:b", "namespace": "ns"}


def test_key_is_url_encoded_as_one_segment(client: Client, server: Server) -> None:
    server.reply(KEY_JSON)
    client.rotate_key("pki:root ca/x")
    assert server.last.url.raw_path == b"/v1/keys/pki%3Aroot%20ca%2Fx/rotate"


def test_list_keys_params_and_iteration(client: Client, server: Server) -> None:
    server.reply({"keys": [KEY_JSON], "next_page_token": "p2"})
    server.reply({"keys": [dict(KEY_JSON, id="k_02")]})
    ids = [k.id for k in client.iter_keys(namespace="pki", labels={"a": "b", "c": "d"})]
    assert ids == ["k_01", "k_02"]
    first, second = server.requests
    assert first.url.params.get_list("label") == ["a=b", "c=d"]
    assert first.url.params["namespace"] == "pki"
    assert "page_token" not in first.url.params
    assert second.url.params["page_token"] == "p2"


def test_lifecycle_routes(client: Client, server: Server) -> None:
    calls: list[tuple[Any, str, dict[str, Any]]] = [
        (lambda: client.disable_key("k"), "/v1/keys/k/disable", {}),
        (lambda: client.enable_key("k"), "/v1/keys/k/enable", {}),
        (lambda: client.cancel_destruction("k"), "/v1/keys/k/cancel-destruction", {}),
        (
            lambda: client.schedule_destruction("k", pending_days=7),
            "/v1/keys/k/schedule-destruction",
            {"pending_days": 7},
        ),
        (lambda: client.compromise_key("k", "leak"), "/v1/keys/k/compromise", {"reason": "leak"}),
        (
            lambda: client.update_key("k", description="d"),
            "/v1/keys/k",
            {"description": "d"},
        ),
    ]
    for call, path, body in calls:
        server.reply(KEY_JSON)
        assert call().id == "k_01"
        assert server.last.url.path == path
        assert server.last_json() == body


def test_versions(client: Client, server: Server) -> None:
    v = {
        "version": 2,
        "state": "destroyed",
        "created_at": "2025-01-01T00:00:00Z",
        "destroyed_at": "2025-02-01T00:00:00Z",
    }
    server.reply({"versions": [v]})
    assert client.list_versions("k")[0].version == 2
    server.reply(v)
    assert client.destroy_version("k", 2).state == "destroyed"
    assert server.last.url.path == "/v1/keys/k/versions/2/destroy"


def test_encrypt_decrypt_base64(client: Client, server: Server) -> None:
    server.reply({"ciphertext": "keykeeper:v1:k_01:1:AAAA", "key_version": 1})
    res = client.encrypt("orders", b"\x00\xffzq7", context={"o": "1"})
    assert server.last_json() == {"plaintext": b64(b"\x00\xffzq7"), "context": {"o": "1"}}
    assert res == EncryptResult(ciphertext="keykeeper:v1:k_01:1:AAAA", key_version=1)
    server.reply({"plaintext": b64(b"\x00\xffzq7"), "key_version": 1})
    out = client.decrypt("orders", res.ciphertext)
    assert out.plaintext == b"\x00\xffzq7"
    assert "zq7" not in repr(out)


def test_batches(client: Client, server: Server) -> None:
    server.reply(
        {
            "items": [
                {"ciphertext": "c1", "key_version": 1},
                {"error": {"code": "payload_too_large", "detail": "too big"}},
            ]
        }
    )
    res = client.encrypt_batch(
        "k", [b"a", EncryptItem(plaintext=b"b", context={"x": "y"})], context={"z": "1"}
    )
    assert server.last_json() == {
        "items": [
            {"plaintext": b64(b"a"), "context": {"z": "1"}},
            {"plaintext": b64(b"b"), "context": {"x": "y"}},
        ]
    }
    assert res[0] == EncryptResult(ciphertext="c1", key_version=1)
    assert isinstance(res[1], ItemError)
    assert isinstance(res[1].to_exception(), errors.PayloadTooLarge)
    server.reply({"items": [{"plaintext": b64(b"a"), "key_version": 1}]})
    got = client.decrypt_batch("k", [DecryptItem(ciphertext="c1")])
    assert isinstance(got[0], DecryptResult) and got[0].plaintext == b"a"


def test_data_key_repr_hides_plaintext(client: Client, server: Server) -> None:
    secret = bytes(range(32))
    server.reply({"ciphertext": "wrapped", "key_version": 3, "plaintext": b64(secret)})
    dk = client.generate_data_key("k", context={"f": "x"})
    assert server.last_json() == {
        "key_spec": "AES_256",
        "context": {"f": "x"},
        "include_plaintext": True,
    }
    assert isinstance(dk, DataKey) and dk.plaintext == secret
    assert b64(secret) not in repr(dk) and repr(secret) not in repr(dk)
    assert "hidden" in repr(dk)
    init_repr = repr(InitResult(root_token="s.R00T", unseal_passphrase="pp-9x"))
    assert "R00T" not in init_repr and "9x" not in init_repr


def test_sign_verify_mac(client: Client, server: Server) -> None:
    server.reply({"signature": b64(b"sig"), "key_version": 1})
    assert client.sign("k", b"msg", signature_format="p1363").signature == b"sig"
    assert server.last_json() == {"message": b64(b"msg"), "signature_format": "p1363"}
    server.reply({"valid": True, "key_version": 1})
    assert client.verify("k", b"sig", digest=b"\x01" * 32)
    assert server.last_json() == {"digest": b64(b"\x01" * 32), "signature": b64(b"sig")}
    with pytest.raises(errors.InvalidArgument):
        client.sign("k", b"m", digest=b"d")
    with pytest.raises(errors.InvalidArgument):
        client.sign("k")
    server.reply({"mac": b64(b"tag"), "key_version": 1})
    assert client.mac("k", b"m").mac == b"tag"
    server.reply({"valid": False, "key_version": 1})
    assert not client.verify_mac("k", b"m", b"tag")
    assert server.last_json() == {"message": b64(b"m"), "mac": b64(b"tag")}


def test_public_key_kem_random(client: Client, server: Server) -> None:
    server.reply(
        {"public_key": "-----BEGIN PUBLIC KEY-----", "key_version": 2, "algorithm": "ED25519"}
    )
    assert client.get_public_key("k", version=2).key_version == 2
    assert server.last.url.params["version"] == "2"
    server.reply({"shared_secret": b64(b"s"), "ciphertext": b64(b"c"), "key_version": 1})
    enc = client.encapsulate("k")
    assert enc.ciphertext == b"c" and "s'" not in repr(enc)
    server.reply({"shared_secret": b64(b"s"), "key_version": 1})
    assert client.decapsulate("k", b"c").shared_secret == b"s"
    assert server.last_json() == {"ciphertext": b64(b"c")}
    server.reply({"bytes": b64(b"\x07" * 16)})
    assert client.random(16) == b"\x07" * 16
    assert server.last_json() == {"length": 16}


def test_sys_routes_need_no_token(client: Client, server: Server) -> None:
    server.reply({"root_token": "r", "unseal_passphrase": "p"})
    assert client.init().root_token == "r"
    assert server.last_json() == {}
    assert "authorization" not in server.last.headers
    server.reply({"initialized": True, "sealed": False, "version": "1"})
    assert client.unseal("pp").sealed is False
    server.reply({"initialized": True, "sealed": True, "version": "1"})
    assert client.seal().sealed is True
    assert server.last.headers["authorization"] == "Bearer tok"


CODES = [
    ("invalid_argument", 400, errors.InvalidArgument),
    ("unauthenticated", 401, errors.Unauthenticated),
    ("permission_denied", 403, errors.PermissionDenied),
    ("not_found", 404, errors.NotFound),
    ("already_exists", 409, errors.AlreadyExists),
    ("failed_precondition", 409, errors.FailedPrecondition),
    ("approval_required", 202, errors.ApprovalRequired),
    ("payload_too_large", 413, errors.PayloadTooLarge),
    ("resource_exhausted", 429, errors.ResourceExhausted),
    ("decryption_failed", 400, errors.DecryptionFailed),
    ("sealed", 503, errors.Sealed),
    ("unavailable", 503, errors.Unavailable),
    ("internal", 500, errors.Internal),
]


@pytest.mark.parametrize(("code", "status", "cls"), CODES)
def test_problem_json_maps_to_error_class(
    client: Client, server: Server, code: str, status: int, cls: type[errors.KeykeeperError]
) -> None:
    server.problem(code, status, detail="key 'default:foo' not found", rid="req-9")
    with pytest.raises(cls) as info:
        client.get_key("foo")
    err = info.value
    assert type(err) is cls
    assert err.code == code
    if cls is not errors.DecryptionFailed:
        assert err.detail == "key 'default:foo' not found"
    assert getattr(err, "status", None) == status
    assert getattr(err, "request_id", None) == "req-9"
    assert "request_id: req-9" in (err.__notes__ or [])


def test_unknown_code_maps_to_internal(client: Client, server: Server) -> None:
    server.problem("brand_new", 418)
    with pytest.raises(errors.Internal):
        client.get_key("foo")


@pytest.mark.parametrize(
    ("status", "cls"),
    [(502, errors.Unavailable), (404, errors.NotFound), (500, errors.Internal)],
)
def test_non_json_error_maps_by_status(
    client: Client, server: Server, status: int, cls: type[errors.KeykeeperError]
) -> None:
    server.answers.append(httpx.Response(status, text="<html>bad gateway</html>"))
    with pytest.raises(cls) as info:
        client.health()
    assert str(status) in info.value.detail


def test_malformed_answer_is_internal(client: Client, server: Server) -> None:
    server.reply({"unexpected": True})
    with pytest.raises(errors.Internal, match="unexpected answer"):
        client.get_key("foo")


def test_connection_failure() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    c = Client("http://kk.test:1", transport=httpx.MockTransport(refuse))
    with c, pytest.raises(ConnectionFailed, match=r"cannot reach keykeeper at http://kk.test:1"):
        c.health()
    assert issubclass(ConnectionFailed, errors.Unavailable)


def test_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    c = Client("http://kk.test:1", transport=httpx.MockTransport(slow))
    with c, pytest.raises(ConnectionFailed, match="timed out"):
        c.health()


def test_empty_key_rejected(client: Client) -> None:
    with pytest.raises(errors.InvalidArgument):
        client.get_key("")


def test_sdk_refuses_str_for_bytes_and_a_broken_token() -> None:
    from keykeeper.client import Client
    from keykeeper.errors import InvalidArgument

    with Client("http://127.0.0.1:1", token="t") as kk, pytest.raises(InvalidArgument):
        kk.encrypt("k", "text")  # type: ignore[arg-type]
    with Client("http://127.0.0.1:1", token="tok\n") as kk, pytest.raises(InvalidArgument):
        kk.list_keys()

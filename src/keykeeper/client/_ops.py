"""Cryptographic-operation routes of the SDK (``/v1/keys/{key}/<op>``, ``/v1/random``).

All binary arguments and results are ``bytes``; the SDK does the base64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keykeeper.client._http import Http, b64, key_path
from keykeeper.client.models import (
    DataKey,
    Decapsulation,
    DecryptItem,
    DecryptResult,
    Encapsulation,
    EncryptItem,
    EncryptResult,
    ItemError,
    MacResult,
    PublicKey,
    SignResult,
    VerifyResult,
    _BatchItem,
    _BatchItems,
    _Random,
)
from keykeeper.errors import Internal, InvalidArgument

__all__ = ["OpsMixin"]

Context = Mapping[str, str] | None


def _ctx(context: Context) -> dict[str, str] | None:
    return dict(context) if context is not None else None


def _message_or_digest(message: bytes | None, digest: bytes | None) -> dict[str, str]:
    if (message is None) == (digest is None):
        raise InvalidArgument("give exactly one of message or digest")
    return {"message": b64(message)} if message is not None else {"digest": b64(digest or b"")}


def _item_result(item: _BatchItem, want: str) -> EncryptResult | DecryptResult | ItemError:
    if item.error is not None:
        return item.error
    if want == "encrypt" and item.ciphertext is not None and item.key_version is not None:
        return EncryptResult(ciphertext=item.ciphertext, key_version=item.key_version)
    if want == "decrypt" and item.plaintext is not None and item.key_version is not None:
        return DecryptResult(plaintext=item.plaintext, key_version=item.key_version)
    raise Internal("unexpected batch item in keykeeper answer")


class OpsMixin:
    """Routes that use keys; mixed into :class:`Client`."""

    _http: Http

    def encrypt(
        self, key: str, plaintext: bytes, *, context: Context = None, key_version: int | None = None
    ) -> EncryptResult:
        """``POST /v1/keys/{key}/encrypt``. ``context`` (str→str) is bound as associated
        data and must be given again to decrypt. Raises FailedPrecondition if the key
        is not usable for encryption, PayloadTooLarge for an oversized plaintext."""
        body = {"plaintext": b64(plaintext), "context": _ctx(context), "key_version": key_version}
        return self._http.call("POST", key_path(key, "encrypt"), EncryptResult, body=body)

    def decrypt(self, key: str, ciphertext: str, *, context: Context = None,
                allow_compromised: bool = False) -> DecryptResult:
        """``POST /v1/keys/{key}/decrypt``. Raises DecryptionFailed (one uniform error)
        for a wrong key, version or context, or a tampered ciphertext.
        ``allow_compromised``: recovery with a compromised key or version
        (refused without it; audited when used)."""
        body = {"ciphertext": ciphertext, "context": _ctx(context),
                "allow_compromised": allow_compromised or None}
        return self._http.call("POST", key_path(key, "decrypt"), DecryptResult, body=body)

    def encrypt_batch(
        self,
        key: str,
        items: Sequence[bytes | EncryptItem],
        *,
        context: Context = None,
    ) -> list[EncryptResult | ItemError]:
        """Encrypt up to 1000 items in one request, answers in the same order.

        A bare ``bytes`` item uses ``context``; an :class:`EncryptItem` carries its
        own. A failed item is an :class:`ItemError` (``.to_exception()`` gives the
        error); the request itself raises only if the whole batch is refused.
        """
        wire: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, EncryptItem):
                entry = {
                    "plaintext": b64(item.plaintext),
                    "context": item.context,
                    "key_version": item.key_version,
                }
            else:
                entry = {"plaintext": b64(item), "context": _ctx(context)}
            wire.append({k: v for k, v in entry.items() if v is not None})
        answer = self._http.call(
            "POST", key_path(key, "encrypt"), _BatchItems, body={"items": wire}
        )
        out: list[EncryptResult | ItemError] = []
        for got in answer.items:
            result = _item_result(got, "encrypt")
            assert not isinstance(result, DecryptResult)
            out.append(result)
        return out

    def decrypt_batch(
        self,
        key: str,
        items: Sequence[str | DecryptItem],
        *,
        context: Context = None,
        allow_compromised: bool = False,
    ) -> list[DecryptResult | ItemError]:
        """Decrypt up to 1000 ciphertexts in one request; see :meth:`encrypt_batch`.
        ``allow_compromised`` applies to every item (see :meth:`decrypt`)."""
        wire: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, DecryptItem):
                entry = {"ciphertext": item.ciphertext, "context": item.context}
            else:
                entry = {"ciphertext": item, "context": _ctx(context)}
            wire.append({k: v for k, v in entry.items() if v is not None})
        answer = self._http.call(
            "POST", key_path(key, "decrypt"), _BatchItems,
            body={"items": wire, "allow_compromised": allow_compromised or None},
        )
        out: list[DecryptResult | ItemError] = []
        for got in answer.items:
            result = _item_result(got, "decrypt")
            assert not isinstance(result, EncryptResult)
            out.append(result)
        return out

    def rewrap(self, key: str, ciphertext: str, *, context: Context = None,
               allow_compromised: bool = False,
               destination_key: str | None = None) -> EncryptResult:
        """``POST /v1/keys/{key}/rewrap``: re-encrypt under the primary version without
        revealing the plaintext. Raises DecryptionFailed like :meth:`decrypt`.
        ``allow_compromised``: recovery with a compromised key or version
        (refused without it; audited when used). ``destination_key``: re-encrypt under
        that key instead (the caller needs ``encrypt`` on it), as AWS KMS's ReEncrypt."""
        body = {"ciphertext": ciphertext, "context": _ctx(context),
                "allow_compromised": allow_compromised or None,
                "destination_key": destination_key}
        return self._http.call("POST", key_path(key, "rewrap"), EncryptResult, body=body)

    def generate_data_key(
        self,
        key: str,
        *,
        key_spec: str = "AES_256",
        context: Context = None,
        include_plaintext: bool = True,
    ) -> DataKey:
        """``POST /v1/keys/{key}/data-key``: a fresh AES_256 (32-byte) or AES_128 key,
        wrapped by ``key``. Unwrap ``ciphertext`` later with :meth:`decrypt`."""
        body = {
            "key_spec": key_spec,
            "context": _ctx(context),
            "include_plaintext": include_plaintext,
        }
        return self._http.call("POST", key_path(key, "data-key"), DataKey, body=body)

    def sign(
        self,
        key: str,
        message: bytes | None = None,
        *,
        digest: bytes | None = None,
        signature_format: str | None = None,
        key_version: int | None = None,
    ) -> SignResult:
        """``POST /v1/keys/{key}/sign`` over exactly one of ``message`` or a precomputed
        ``digest``; ``signature_format`` "der" or "p1363" for ECDSA.
        Raises InvalidArgument if both or neither are given."""
        body: dict[str, Any] = {
            **_message_or_digest(message, digest),
            "signature_format": signature_format,
            "key_version": key_version,
        }
        return self._http.call("POST", key_path(key, "sign"), SignResult, body=body)

    def verify(
        self,
        key: str,
        signature: bytes,
        message: bytes | None = None,
        *,
        digest: bytes | None = None,
        signature_format: str | None = None,
        key_version: int | None = None,
        allow_compromised: bool = False,
    ) -> VerifyResult:
        """``POST /v1/keys/{key}/verify``; the result is truthy iff the signature is valid.
        ``allow_compromised``: recovery with a compromised key or version
        (refused without it; audited when used)."""
        body: dict[str, Any] = {
            **_message_or_digest(message, digest),
            "signature": b64(signature),
            "signature_format": signature_format,
            "key_version": key_version,
            "allow_compromised": allow_compromised or None,
        }
        return self._http.call("POST", key_path(key, "verify"), VerifyResult, body=body)

    def mac(self, key: str, message: bytes, *, key_version: int | None = None) -> MacResult:
        """``POST /v1/keys/{key}/mac``: an HMAC tag over ``message``."""
        body = {"message": b64(message), "key_version": key_version}
        return self._http.call("POST", key_path(key, "mac"), MacResult, body=body)

    def verify_mac(
        self, key: str, message: bytes, mac: bytes, *, key_version: int | None = None,
        allow_compromised: bool = False,
    ) -> VerifyResult:
        """``POST /v1/keys/{key}/verify-mac``; the result is truthy iff the tag is valid.
        ``allow_compromised``: recovery with a compromised key or version
        (refused without it; audited when used)."""
        body = {"message": b64(message), "mac": b64(mac), "key_version": key_version,
                "allow_compromised": allow_compromised or None}
        return self._http.call("POST", key_path(key, "verify-mac"), VerifyResult, body=body)

    def get_public_key(self, key: str, *, version: int | None = None) -> PublicKey:
        """``GET /v1/keys/{key}/public-key``: PEM of the primary (or given) version.
        Raises FailedPrecondition for a symmetric key."""
        params = {"version": version}
        return self._http.call("GET", key_path(key, "public-key"), PublicKey, params=params)

    def encapsulate(self, key: str, *, key_version: int | None = None) -> Encapsulation:
        """``POST /v1/keys/{key}/encapsulate`` with a KEM key (e.g. ML_KEM_768)."""
        body = {"key_version": key_version}
        return self._http.call("POST", key_path(key, "encapsulate"), Encapsulation, body=body)

    def decapsulate(
        self, key: str, ciphertext: bytes, *, key_version: int | None = None,
        allow_compromised: bool = False,
    ) -> Decapsulation:
        """``POST /v1/keys/{key}/decapsulate``: recover the shared secret.
        ``allow_compromised``: recovery with a compromised key or version
        (refused without it; audited when used)."""
        body = {"ciphertext": b64(ciphertext), "key_version": key_version,
                "allow_compromised": allow_compromised or None}
        return self._http.call("POST", key_path(key, "decapsulate"), Decapsulation, body=body)

    def random(self, length: int) -> bytes:
        """``POST /v1/random``: ``length`` (1..65536) bytes from the server's CSPRNG."""
        return self._http.call("POST", "/v1/random", _Random, body={"length": length}).data

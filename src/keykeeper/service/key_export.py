"""Wrapped key export (issue 6 §4), mixed into :class:`keykeeper.service.keys.KeyAdmin`.

Only a key created ``exportable`` (a flag set at creation only; PATCH cannot turn it on)
and held in software leaves keykeeper, and only wrapped, never in clear:

* under a caller's RSA public key (SPKI PEM or DER, RSA-3072 or larger) with
  ``RSA_AES_KEY_WRAP_SHA256`` (default; CKM_RSA_AES_KEY_WRAP) or ``RSA_OAEP_SHA256``
  (material that fits one OAEP block: symmetric keys);
* or under a keykeeper key of purpose ``wrap`` (``wrapping_key``): ``AES_256_KWP`` wraps
  with ``AES_KEY_WRAP_PAD`` (RFC 5649), ``RSA_OAEP_*_SHA256_KWP`` with
  ``RSA_AES_KEY_WRAP_SHA256``; the wrap key must be usable to protect (active primary
  version) and visible to the caller (``key.get``).

The material is raw bytes for secret keys (format ``raw``) and PKCS#8 DER for private keys
(``pkcs8``). Export needs ``key.export`` and passes the dual-control gate when the approval
policy lists it (by default): the approved export runs as its requester and its wrapped
material is handed to the requester alone, once (``POST /v1/approvals/{id}/claim``).
The audit record carries ``wrapping_key_fingerprint``: SHA-256 hex of the wrapping public
key's SPKI DER, or of ``"<wrap key id>:<version>"``; never material.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keykeeper.crypto.keyio import public_pem
from keykeeper.crypto.registry import Purpose
from keykeeper.crypto.wrap import (
    AES_KEY_WRAP_PAD,
    RSA_AES_KEY_WRAP_SHA256,
    RSA_OAEP_SHA256,
    exportable_material,
    load_wrapping_public_key,
    rsa_aes_wrap,
    rsa_oaep_wrap,
    spki_fingerprint,
)
from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.domain.lifecycle import check_use, periods_for
from keykeeper.domain.states import ERASED, KeyState, Use
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound, WrongPurpose
from keykeeper.service.approval_args import Claimable
from keykeeper.service.context import RequestContext
from keykeeper.service.key_admin_base import KeyAdminBase

__all__ = ["ExportedKey", "KeyExportMixin"]

_GONE = (KeyState.PENDING_DESTRUCTION, KeyState.DESTROYED, KeyState.DESTROYED_COMPROMISED)


@dataclass(frozen=True, slots=True)
class ExportedKey:
    """One wrapped export; ``wrapped_key_material`` is the wrapping's output."""

    key_id: str
    key_version: int
    wrapped_key_material: bytes
    format: str                          # "raw" | "pkcs8"
    wrapping_algorithm: str
    wrapping_key_fingerprint: str
    wrapping_key: str | None = None      # the keykeeper wrap key's id, if one was used
    wrapping_key_version: int | None = None

    def __repr__(self) -> str:
        return (f"ExportedKey(key_id={self.key_id!r}, key_version={self.key_version}, "
                f"wrapping_key_fingerprint={self.wrapping_key_fingerprint!r})")

    def as_result(self) -> dict[str, Any]:
        """The JSON answer of an approved export: the wrapped material claimable by the
        requester only (service/approval_args.py)."""
        return {"key_id": self.key_id, "key_version": self.key_version, "format": self.format,
                "wrapping_algorithm": self.wrapping_algorithm,
                "wrapping_key_fingerprint": self.wrapping_key_fingerprint,
                "wrapping_key": self.wrapping_key,
                "wrapping_key_version": self.wrapping_key_version,
                "wrapped_key_material": Claimable(
                    base64.b64encode(self.wrapped_key_material).decode("ascii"))}


@dataclass(frozen=True, slots=True)
class _Target:
    wrap: Callable[[bytes], bytes]
    algorithm: str
    fingerprint: str
    arguments: dict[str, Any]          # what the approvers see (no secret)
    described: str
    key_id: str | None = None
    version: int | None = None


def _export_version(key: Key, version: int | None) -> KeyVersion:
    if not key.exportable:
        raise FailedPrecondition(f"key '{key.ref}' was not created exportable: its material "
                                 "never leaves keykeeper")
    if key.protection == "hsm":
        raise FailedPrecondition("an HSM-protected key is never exportable")
    if key.state in _GONE:
        raise FailedPrecondition(f"cannot export a key in state '{key.state}'")
    if key.primary_version == 0 and version is None:
        raise FailedPrecondition(f"key '{key.ref}' has no key material yet: import it first")
    number = key.primary_version if version is None else version
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise InvalidArgument("version must be a positive integer")
    v = key.version(number)
    if v is None:
        raise NotFound(f"key '{key.ref}' has no version {number}")
    if v.state in ERASED:
        raise FailedPrecondition(f"key version {number} is destroyed")
    if v.public_only:
        raise FailedPrecondition(f"key version {number} holds a public key only: there is "
                                 "no private material to export")
    return v


def _public_target(pem: str, algorithm: str | None) -> _Target:
    public = load_wrapping_public_key(pem)
    chosen = algorithm or RSA_AES_KEY_WRAP_SHA256
    if chosen not in (RSA_AES_KEY_WRAP_SHA256, RSA_OAEP_SHA256):
        raise InvalidArgument(f"wrapping_algorithm with a wrapping_public_key must be "
                              f"{RSA_AES_KEY_WRAP_SHA256} or {RSA_OAEP_SHA256}")
    fingerprint = spki_fingerprint(public)

    def wrap(material: bytes) -> bytes:
        if chosen == RSA_OAEP_SHA256:
            return rsa_oaep_wrap(public, material)
        return rsa_aes_wrap(public, material)

    return _Target(wrap, chosen, fingerprint,
                   {"wrapping_public_key": public_pem(public)},
                   f"an RSA-{public.key_size} public key")


class KeyExportMixin(KeyAdminBase):
    """Wrapped export: mixed into KeyAdmin, whose collaborators it uses."""

    def register_export_executor(self, register: Callable[[str, Callable[
            [RequestContext, dict[str, Any]], dict[str, Any]]], None]) -> None:
        """How an approved ``key.export`` runs (as its requester): the same export, which
        refuses if the wrapping key is no longer the one the approvers saw."""
        register("key.export", lambda ctx, a: self.export(
            ctx, a["key"], version=a["version"],
            wrapping_public_key=a.get("wrapping_public_key"),
            wrapping_key=a.get("wrapping_key"), wrapping_algorithm=a["wrapping_algorithm"],
            expected_fingerprint=a["wrapping_key_fingerprint"]).as_result())

    def _wrap_key_target(self, ctx: RequestContext, ref: str,
                         algorithm: str | None) -> _Target:
        saved = (ctx.namespace, ctx.key_id, ctx.key_version)
        try:
            wkey = self._lookup.get(ctx, ref)
            self._authz.require_key(ctx, "key.get", wkey, ref)
        finally:
            ctx.namespace, ctx.key_id, ctx.key_version = saved
        if wkey.purpose != Purpose.WRAP:
            raise WrongPurpose(f"wrapping_key '{wkey.ref}' has purpose "
                               f"'{wkey.purpose}'; it must be a key of purpose 'wrap'")
        number = wkey.primary_version
        v = wkey.version(number)
        if v is None:
            raise FailedPrecondition(f"wrapping_key '{wkey.ref}' has no key material")
        check_use(wkey, v, Use.PROTECT, self._d.clock(),
                  periods_for(wkey, *self._lookup.namespace_periods(wkey.namespace)))
        chosen = AES_KEY_WRAP_PAD if wkey.algorithm == "AES_256_KWP" else RSA_AES_KEY_WRAP_SHA256
        if algorithm not in (None, chosen):
            raise InvalidArgument(f"wrapping_key '{wkey.ref}' ({wkey.algorithm}) wraps with "
                                  f"{chosen}, not {str(algorithm)[:40]}")
        handle = self._lookup.handle(wkey, number)
        fingerprint = hashlib.sha256(f"{wkey.id}:{number}".encode()).hexdigest()
        return _Target(handle.wrap, chosen, fingerprint, {"wrapping_key": wkey.id},
                       f"wrap key {wkey.ref} version {number}", wkey.id, number)

    def export(self, ctx: RequestContext, ref: str, *, version: int | None = None,
               wrapping_public_key: str | None = None, wrapping_key: str | None = None,
               wrapping_algorithm: str | None = None,
               expected_fingerprint: str | None = None) -> ExportedKey:
        """Export version ``version`` (default: the primary) of ``ref`` wrapped under
        exactly one of ``wrapping_public_key`` (PEM) or ``wrapping_key`` (a wrap key's
        reference). Raises ApprovalRequired (202) when dual control applies;
        FailedPrecondition for a key not exportable, HSM-protected, without material or
        gone, or an unusable wrap key; InvalidArgument for bad arguments; NotFound."""
        self._lookup.require_unsealed()
        key = self._authorized(ctx, ref, "key.export")
        v = _export_version(key, version)
        ctx.key_version = v.version
        if (wrapping_public_key is None) == (wrapping_key is None):
            raise InvalidArgument("give exactly one of wrapping_public_key (PEM) or "
                                  "wrapping_key (a keykeeper key of purpose 'wrap')")
        if wrapping_public_key is not None:
            target = _public_target(wrapping_public_key, wrapping_algorithm)
        else:
            assert wrapping_key is not None
            target = self._wrap_key_target(ctx, wrapping_key, wrapping_algorithm)
        ctx.wrapping_key_fingerprint = target.fingerprint
        if expected_fingerprint is not None and expected_fingerprint != target.fingerprint:
            raise FailedPrecondition("the wrapping key is no longer the one this export was "
                                     "approved for (it was rotated or replaced)")
        self._dual_control(
            ctx, "key.export", key,
            f"export version {v.version} of key {key.ref} wrapped under {target.described} "
            f"(fingerprint {target.fingerprint})",
            version=v.version, wrapping_algorithm=target.algorithm,
            wrapping_key_fingerprint=target.fingerprint, **target.arguments)
        material, fmt = exportable_material(self._lookup.handle(key, v.version))
        wrapped = target.wrap(material)
        return ExportedKey(key_id=key.id, key_version=v.version, wrapped_key_material=wrapped,
                           format=fmt, wrapping_algorithm=target.algorithm,
                           wrapping_key_fingerprint=target.fingerprint,
                           wrapping_key=target.key_id, wrapping_key_version=target.version)

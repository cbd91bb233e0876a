"""One function per route: decoded request struct in, response struct out.

Handlers only translate: every check, action and audit detail happens in service/.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

import msgspec
from pybase64 import b64decode

from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.errors import InvalidArgument, KeykeeperError
from keykeeper.rest import schemas as s
from keykeeper.rest.convert import key_out, version_out
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services
from keykeeper.service.key_lifecycle import LIFECYCLE_FIELDS
from keykeeper.service.keys import CreateKey
from keykeeper.service.operations import Encrypted
from keykeeper.store.keys import KeyFilter

Params = Mapping[str, str]


def _int_param(params: Params, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise InvalidArgument(f"{name} must be a positive integer")
    return int(raw)


def _decoded_items(items: list[s.EncryptItem]) -> list[_Item]:
    """Decode each item's base64 plaintext (standard alphabet, padding required)."""
    try:
        return [_Item(b64decode(i.plaintext, validate=True), i.context, i.key_version)
                for i in items]
    except (binascii.Error, ValueError):
        for n, i in enumerate(items):
            try:
                b64decode(i.plaintext, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidArgument("invalid request body: Invalid base64 encoded string - "
                                      f"at `$.items[{n}].plaintext`") from None
        raise


class _Item(NamedTuple):
    plaintext: bytes
    context: dict[str, str] | None
    key_version: int | None


def _item_error(exc: Exception) -> s.ItemError:
    assert isinstance(exc, KeykeeperError)
    return s.ItemError(code=exc.code, detail=exc.detail)


# -- keys ------------------------------------------------------------------------------------
def _key_out(svc: Services, key: Key) -> s.KeyOut:
    """A key with its effective crypto-period (the namespace's defaults need a read)."""
    return key_out(key, svc.keys.periods_of([key])[key.id])


def create_key(svc: Services, ctx: RequestContext, p: Params,
               body: s.CreateKeyRequest) -> s.KeyOut:
    args = CreateKey(name=body.name, namespace=body.namespace, purpose=body.purpose,
                     algorithm=body.algorithm, rotation_period=body.rotation_period,
                     labels=body.labels, description=body.description,
                     exportable=body.exportable, protection=body.protection,
                     activation_date=body.activation_date,
                     deactivation_date=body.deactivation_date, usage_limit=body.usage_limit,
                     usage_rotate_fraction=body.usage_rotate_fraction,
                     originator_usage_period=body.originator_usage_period,
                     recipient_usage_period=body.recipient_usage_period,
                     origin=body.origin)
    return _key_out(svc, svc.keys.create(ctx, args))


def list_keys(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.KeyList:
    labels: dict[str, str] = {}
    for raw in p.get("label", "").split(",") if p.get("label") else []:
        name, sep, value = raw.partition("=")
        if not sep or not name:
            raise InvalidArgument("label filter must be name=value")
        labels[name] = value
    flt = KeyFilter(namespace=p.get("namespace") or None, state=p.get("state") or None,
                    purpose=p.get("purpose") or None, labels=labels or None)
    keys, token = svc.keys.list_keys(ctx, flt, _int_param(p, "page_size"),
                                p.get("page_token") or None)
    periods = svc.keys.periods_of(keys)
    return s.KeyList(keys=[key_out(k, periods[k.id]) for k in keys], next_page_token=token)


def get_key(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.KeyOut:
    return _key_out(svc, svc.keys.get(ctx, p["key"]))


def update_key(svc: Services, ctx: RequestContext, p: Params,
               body: s.UpdateKeyRequest) -> s.KeyOut:
    lifecycle: dict[str, Any] = {f: getattr(body, f) for f in LIFECYCLE_FIELDS
                                 if getattr(body, f) is not msgspec.UNSET}
    return _key_out(svc, svc.keys.update(ctx, p["key"], description=body.description,
                                         labels=body.labels, lifecycle=lifecycle))


def list_versions(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.VersionList:
    key = svc.keys.get(ctx, p["key"], "key.versions")
    periods = svc.keys.periods_of([key])[key.id]
    return s.VersionList(versions=[version_out(_net(svc, v), key, periods)
                                   for v in key.versions])


def _net(svc: Services, v: KeyVersion) -> KeyVersion:
    """The version with this node's unused reservations taken off its stored count: exact
    on one node at once (other nodes return theirs within about a second of idling)."""
    held = svc.usage.held(v.key_id, v.version) if svc.usage is not None else 0
    return replace(v, protect_count=v.protect_count - held) if held else v


def rotate(svc: Services, ctx: RequestContext, p: Params, body: s.Empty) -> s.KeyOut:
    return _key_out(svc, svc.keys.rotate(ctx, p["key"]))


def disable(svc: Services, ctx: RequestContext, p: Params, body: s.Empty) -> s.KeyOut:
    return _key_out(svc, svc.keys.disable(ctx, p["key"]))


def enable(svc: Services, ctx: RequestContext, p: Params, body: s.Empty) -> s.KeyOut:
    return _key_out(svc, svc.keys.enable(ctx, p["key"]))


def schedule_destruction(svc: Services, ctx: RequestContext, p: Params,
                         body: s.ScheduleDestructionRequest) -> s.KeyOut:
    return _key_out(svc, svc.keys.schedule_destruction(ctx, p["key"], body.pending_days))


def cancel_destruction(svc: Services, ctx: RequestContext, p: Params, body: s.Empty) -> s.KeyOut:
    return _key_out(svc, svc.keys.cancel_destruction(ctx, p["key"]))


def compromise(svc: Services, ctx: RequestContext, p: Params,
               body: s.CompromiseRequest) -> s.KeyOut:
    return _key_out(svc, svc.keys.compromise(ctx, p["key"], body.reason,
                                             compromise_time=body.compromise_time))


def destroy_version(svc: Services, ctx: RequestContext, p: Params,
                    body: s.Empty) -> s.VersionOut:
    version = _int_param(p, "version")
    if version is None or version < 1:
        raise InvalidArgument("version must be a positive integer")
    return version_out(svc.keys.destroy_version(ctx, p["key"], version))


def activate(svc: Services, ctx: RequestContext, p: Params, body: s.Empty) -> s.KeyOut:
    return _key_out(svc, svc.keys.activate(ctx, p["key"]))


def trim(svc: Services, ctx: RequestContext, p: Params, body: s.TrimRequest) -> s.KeyOut:
    return _key_out(svc, svc.keys.trim(ctx, p["key"], body.min_available_version))


# -- data plane ------------------------------------------------------------------------------
def encrypt(svc: Services, ctx: RequestContext, p: Params,
            body: s.EncryptRequest) -> s.EncryptResult | s.EncryptBatchResponse:
    if body.items is not None:
        if body.plaintext is not None or body.context is not None or body.key_version:
            raise InvalidArgument("send either items or a single plaintext, not both")
        if not 1 <= len(body.items) <= 1000:
            raise InvalidArgument("items holds 1 to 1000 entries")
        ctx.items = len(body.items)
        results = svc.crypto.encrypt_batch(ctx, p["key"], _decoded_items(body.items))
        result, error = s.EncryptResult, _item_error
        out = [result(r[0], r[1]) if isinstance(r, Encrypted) else result(error=error(r))
               for r in results]
        ctx.failed_items = sum(1 for r in results if isinstance(r, Exception))
        return s.EncryptBatchResponse(items=out)
    if body.plaintext is None:
        raise InvalidArgument("plaintext (base64) or items is required")
    r = svc.crypto.encrypt(ctx, p["key"], body.plaintext, body.context, body.key_version)
    return s.EncryptResult(ciphertext=r.ciphertext, key_version=r.key_version)


def decrypt(svc: Services, ctx: RequestContext, p: Params,
            body: s.DecryptRequest) -> s.DecryptResult | s.DecryptBatchResponse:
    if body.items is not None:
        if body.ciphertext is not None or body.context is not None:
            raise InvalidArgument("send either items or a single ciphertext, not both")
        if not 1 <= len(body.items) <= 1000:
            raise InvalidArgument("items holds 1 to 1000 entries")
        ctx.items = len(body.items)
        results = svc.crypto.decrypt_batch(
            ctx, p["key"], [(i.ciphertext, i.context) for i in body.items],
            allow_compromised=[body.allow_compromised or i.allow_compromised
                               for i in body.items])
        out = [s.DecryptResult(error=_item_error(r)) if isinstance(r, Exception)
               else s.DecryptResult(plaintext=r[0], key_version=r[1]) for r in results]
        ctx.failed_items = sum(1 for r in results if isinstance(r, Exception))
        return s.DecryptBatchResponse(items=out)
    if body.ciphertext is None:
        raise InvalidArgument("ciphertext or items is required")
    plaintext, version = svc.crypto.decrypt(ctx, p["key"], body.ciphertext, body.context,
                                            allow_compromised=body.allow_compromised)
    return s.DecryptResult(plaintext=plaintext, key_version=version)


def rewrap(svc: Services, ctx: RequestContext, p: Params, body: s.RewrapRequest) -> s.Ciphertext:
    r = svc.crypto.rewrap(ctx, p["key"], body.ciphertext, body.context,
                          allow_compromised=body.allow_compromised,
                          destination=body.destination_key)
    return s.Ciphertext(ciphertext=r.ciphertext, key_version=r.key_version)


def data_key(svc: Services, ctx: RequestContext, p: Params,
             body: s.DataKeyRequest) -> s.DataKeyResponse:
    r = svc.crypto.data_key(ctx, p["key"], body.key_spec, body.context, body.include_plaintext)
    return s.DataKeyResponse(ciphertext=r.ciphertext, key_version=r.key_version,
                             plaintext=r.plaintext)


def _message_or_digest(message: bytes | None, digest: bytes | None) -> tuple[bytes, bool]:
    if (message is None) == (digest is None):
        raise InvalidArgument("give exactly one of message or digest (base64)")
    return (digest, True) if digest is not None else (message or b"", False)


def sign(svc: Services, ctx: RequestContext, p: Params, body: s.SignRequest) -> s.SignResponse:
    data, prehashed = _message_or_digest(body.message, body.digest)
    sig, version = svc.crypto.sign(ctx, p["key"], data, prehashed=prehashed,
                                   signature_format=body.signature_format,
                                   key_version=body.key_version)
    return s.SignResponse(signature=sig, key_version=version)


def verify(svc: Services, ctx: RequestContext, p: Params, body: s.VerifyRequest) -> s.Valid:
    data, prehashed = _message_or_digest(body.message, body.digest)
    ok, version = svc.crypto.verify(ctx, p["key"], data, body.signature, prehashed=prehashed,
                                    signature_format=body.signature_format,
                                    key_version=body.key_version,
                                    allow_compromised=body.allow_compromised)
    return s.Valid(valid=ok, key_version=version)


def mac(svc: Services, ctx: RequestContext, p: Params, body: s.MacRequest) -> s.MacResponse:
    tag, version = svc.crypto.mac(ctx, p["key"], body.message, body.key_version)
    return s.MacResponse(mac=tag, key_version=version)


def verify_mac(svc: Services, ctx: RequestContext, p: Params, body: s.VerifyMacRequest) -> s.Valid:
    ok, version = svc.crypto.verify_mac(ctx, p["key"], body.message, body.mac, body.key_version,
                                        allow_compromised=body.allow_compromised)
    return s.Valid(valid=ok, key_version=version)


def public_key(svc: Services, ctx: RequestContext, p: Params,
               body: None) -> s.PublicKeyResponse:
    pem, version, algorithm = svc.crypto.public_key(ctx, p["key"], _int_param(p, "version"))
    return s.PublicKeyResponse(public_key=pem, key_version=version, algorithm=algorithm)


def encapsulate(svc: Services, ctx: RequestContext, p: Params,
                body: s.EncapsulateRequest) -> s.EncapsulateResponse:
    secret, ct, version = svc.crypto.encapsulate(ctx, p["key"], body.key_version)
    return s.EncapsulateResponse(shared_secret=secret, ciphertext=ct, key_version=version)


def decapsulate(svc: Services, ctx: RequestContext, p: Params,
                body: s.DecapsulateRequest) -> s.DecapsulateResponse:
    secret, version = svc.crypto.decapsulate(ctx, p["key"], body.ciphertext, body.key_version,
                                             allow_compromised=body.allow_compromised)
    return s.DecapsulateResponse(shared_secret=secret, key_version=version)


def random(svc: Services, ctx: RequestContext, p: Params,
           body: s.RandomRequest) -> s.RandomResponse:
    return s.RandomResponse(data=svc.crypto.random(ctx, body.length))


"""Bring your own key (issue 6 §3), mixed into :class:`keykeeper.service.keys.KeyAdmin`:
import parameters and the import of wrapped key material into an ``external`` key, as
AWS KMS (GetParametersForImport / ImportKeyMaterial) and Cloud KMS import jobs do.

1. ``POST /v1/keys`` with ``origin: "external"`` makes a key with no version: pre-active,
   ``primary_version`` 0, never rotated here.
2. :meth:`KeyImportMixin.import_parameters` makes a fresh RSA-4096 wrapping key and an
   import token (24 h by default, 60 s .. 7 days). The token is stored only as its SHA-256;
   the wrapping key's private half only wrapped under the namespace KEK, with the key id and
   the token's hash bound as associated data.
3. :meth:`KeyImportMixin.import_material` unwraps (``RSA_OAEP_SHA256`` or
   ``RSA_AES_KEY_WRAP_SHA256``, crypto/wrap.py), parses (crypto/keyio.py formats), checks the
   material against the key's algorithm (type, size, curve, exponent), and stores it as a
   new primary version, in one transaction that also spends the token (single use; its
   wrapped private key is erased). A pre-active key becomes active, unless its activation
   date is still to come. Format ``spki`` imports a public key alone: verify or encrypt
   only (service/lookup.py).

Errors: InvalidArgument with one line that never holds material; every failure to unwrap
is the one message :data:`keykeeper.crypto.wrap.UNWRAP_FAILED`. FailedPrecondition for a
key that is not external, HSM-protected, or in a state that takes no material.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from keykeeper.crypto import KeyHandle, load_private, load_public
from keykeeper.crypto.keyio import check_import_format, import_private_material, import_public_key
from keykeeper.crypto.registry import get_spec
from keykeeper.crypto.spec import Purpose
from keykeeper.crypto.wrap import (
    IMPORT_WRAPPING_ALGORITHMS,
    RSA_AES_KEY_WRAP_SHA256,
    RSA_OAEP_SHA256,
    generate_wrapping_rsa,
    pem_fingerprint,
    rsa_aes_unwrap,
    rsa_oaep_unwrap,
)
from keykeeper.custody.keyring import WrappedVersion
from keykeeper.domain.durations import parse_duration
from keykeeper.domain.keys import Key
from keykeeper.domain.states import KeyState, VersionState
from keykeeper.errors import FailedPrecondition, InvalidArgument
from keykeeper.service.context import RequestContext
from keykeeper.service.key_admin_base import KeyAdminBase
from keykeeper.store.import_tokens import ImportToken, ImportTokenRepository
from keykeeper.store.keys import NewVersion

__all__ = ["DEFAULT_EXPIRES_IN", "MAX_EXPIRES_IN", "MIN_EXPIRES_IN", "ImportParameters",
           "KeyImportMixin", "external_at_creation", "refuse_external_rotation"]

DEFAULT_EXPIRES_IN: Final = 24 * 3600
MIN_EXPIRES_IN: Final = 60
MAX_EXPIRES_IN: Final = 7 * 24 * 3600
MAX_WRAPPED_SIZE: Final = 64 * 1024          # bytes of wrapped material
WRAPPING_KEY_BITS: Final = 4096
# The token's wrapping key, loaded through custody as an RSA-OAEP-SHA256 handle.
_UNWRAPPING_ALGORITHM: Final = "RSA_OAEP_4096_SHA256"
_IMPORTABLE = (KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.SUSPENDED)
_TOKENS = ImportTokenRepository()


@dataclass(frozen=True, slots=True)
class ImportParameters:
    """What a client needs to wrap material for one import (the token is shown once)."""

    key_id: str
    import_token: str = ""
    public_key: str = ""                  # SPKI PEM, RSA-4096
    wrapping_algorithm: str = RSA_AES_KEY_WRAP_SHA256
    expires_at: datetime | None = None
    wrapping_key_fingerprint: str = ""    # SHA-256 hex of the SPKI DER

    def __repr__(self) -> str:
        return f"ImportParameters(key_id={self.key_id!r}, import_token=<hidden>)"


def external_at_creation(key: Key) -> Key:
    """``key`` as an external key is created: no version (``primary_version`` 0),
    pre-active until material is imported, no rotation schedule."""
    return replace(key, origin="external", state=KeyState.PRE_ACTIVE, primary_version=0,
                   rotation_period=None, next_rotation_time=None)


def refuse_external_rotation(key: Key) -> None:
    """FailedPrecondition for an external key: its versions come from imports only."""
    if key.origin == "external":
        raise FailedPrecondition(f"key '{key.ref}' has external (imported) material and "
                                 "cannot be rotated here: import new material instead")


def _check_importable(key: Key) -> None:
    if key.origin != "external":
        raise FailedPrecondition(f"key '{key.ref}' was not created with origin 'external': "
                                 "only external keys take imported material")
    if key.protection == "hsm":
        raise FailedPrecondition("import into HSM-protected keys is not supported")
    if key.state not in _IMPORTABLE:
        raise FailedPrecondition(f"cannot import material into a key in state '{key.state}'")
    if get_spec(key.algorithm).purpose is Purpose.STORE and key.versions:
        raise FailedPrecondition(f"key '{key.ref}' holds stored data (purpose 'store'): its "
                                 "one version is never replaced; register a new object")


def _token_id(token: object) -> str:
    if not isinstance(token, str) or not token or len(token) > 256:
        raise InvalidArgument("import_token is not valid")
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _custody_id(key_id: str, token_id: str) -> str:
    """The name the token's wrapping key has in custody (and its associated data)."""
    return f"{key_id}/import/{token_id}"


def _expires_in(value: int | str | None) -> int:
    if value is None:
        return DEFAULT_EXPIRES_IN
    seconds = parse_duration(value, what="expires_in")
    if not MIN_EXPIRES_IN <= seconds <= MAX_EXPIRES_IN:
        raise InvalidArgument(f"expires_in must be between {MIN_EXPIRES_IN} seconds and "
                              f"{MAX_EXPIRES_IN // 86400} days")
    return seconds


def _check_token(token: ImportToken | None, key: Key, now: datetime) -> ImportToken:
    if token is None:
        raise InvalidArgument("import_token is not valid")
    if token.key_id != key.id:
        raise InvalidArgument("import_token was issued for another key")
    if token.used_at is not None:
        raise InvalidArgument("import_token has already been used: request new import "
                              "parameters")
    assert token.expires_at is not None
    if token.expires_at <= now:
        raise InvalidArgument("import_token has expired: request new import parameters")
    return token


def _unwrap(handle: KeyHandle, algorithm: str, wrapped: bytes) -> bytes:
    if algorithm == RSA_OAEP_SHA256:
        return rsa_oaep_unwrap(handle, wrapped)
    return rsa_aes_unwrap(handle, WRAPPING_KEY_BITS // 8, wrapped)


class KeyImportMixin(KeyAdminBase):
    """Import parameters and import: mixed into KeyAdmin, whose collaborators it uses."""

    def import_parameters(self, ctx: RequestContext, ref: str, *,
                          wrapping_algorithm: str | None = None,
                          expires_in: int | str | None = None) -> ImportParameters:
        """A fresh RSA-4096 wrapping public key (SPKI PEM) and a single-use import token
        for the external key ``ref``, valid ``expires_in`` seconds (or "12h"; default
        24 h, 60 s .. 7 days). ``wrapping_algorithm``: ``RSA_AES_KEY_WRAP_SHA256``
        (default) or ``RSA_OAEP_SHA256``. InvalidArgument for a bad argument;
        FailedPrecondition for a key that cannot take material."""
        self._lookup.require_unsealed()
        algorithm = wrapping_algorithm or RSA_AES_KEY_WRAP_SHA256
        if algorithm not in IMPORT_WRAPPING_ALGORITHMS:
            raise InvalidArgument("wrapping_algorithm must be one of "
                                  + ", ".join(IMPORT_WRAPPING_ALGORITHMS))
        seconds = _expires_in(expires_in)
        key = self._authorized(ctx, ref, "key.import_parameters")
        _check_importable(key)
        der = generate_wrapping_rsa(WRAPPING_KEY_BITS)  # about a second: before the lock
        public = load_private(get_spec(_UNWRAPPING_ALGORITHM), der)
        pem = public.public_key_pem()
        token = "kkit." + secrets.token_urlsafe(32)
        token_id = _token_id(token)
        wrapped = self._d.custody.wrap_material(
            key.namespace, self._lookup.wrapped_kek(key.namespace),
            _custody_id(key.id, token_id), 0, _UNWRAPPING_ALGORITHM, der)
        now = self._d.clock()
        row = ImportToken(id=token_id, key_id=key.id, wrapping_algorithm=algorithm,
                          wrapped_private_key=wrapped, public_key_pem=pem, created_at=now,
                          expires_at=now + timedelta(seconds=seconds))
        with self._d.transaction() as conn:
            _check_importable(self._locked(conn, ctx, ref, "key.import_parameters"))
            _TOKENS.delete_expired(conn, now - timedelta(days=1))
            _TOKENS.insert(conn, row)
        fingerprint = pem_fingerprint(pem)
        ctx.wrapping_key_fingerprint = fingerprint
        return ImportParameters(key_id=key.id, import_token=token, public_key=pem,
                                wrapping_algorithm=algorithm, expires_at=row.expires_at,
                                wrapping_key_fingerprint=fingerprint)

    def import_material(self, ctx: RequestContext, ref: str, *, import_token: str,
                        wrapped_key_material: bytes, format: str) -> Key:
        """Unwrap ``wrapped_key_material`` with the token's wrapping key, check it against
        the key's algorithm, and store it as the key's new primary version (the token is
        spent). ``format``: raw | pkcs8 | pkcs1 | sec1 | spki (crypto/keyio.py), DER or PEM.
        Returns the key. InvalidArgument for a bad, expired, used or foreign token, material
        that does not unwrap (one message) or does not match; FailedPrecondition as
        :meth:`import_parameters`."""
        self._lookup.require_unsealed()
        key = self._authorized(ctx, ref, "key.import")
        _check_importable(key)
        spec = get_spec(key.algorithm)
        fmt = check_import_format(spec, format)
        if not isinstance(wrapped_key_material, bytes) or not wrapped_key_material:
            raise InvalidArgument("wrapped_key_material is required (base64)")
        if len(wrapped_key_material) > MAX_WRAPPED_SIZE:
            raise InvalidArgument(f"wrapped_key_material is at most {MAX_WRAPPED_SIZE} bytes")
        token_id = _token_id(import_token)
        with self._d.reading() as conn:
            token = _check_token(_TOKENS.get(conn, token_id), key, self._d.clock())
        name = _custody_id(key.id, token_id)
        kek = self._lookup.wrapped_kek(key.namespace)

        def load() -> WrappedVersion:
            return WrappedVersion(namespace=key.namespace, wrapped_kek=kek,
                                  algorithm=_UNWRAPPING_ALGORITHM,
                                  wrapped_material=token.wrapped_private_key)

        try:
            unwrapping = self._d.custody.handle(name, 0, load)
            ctx.wrapping_key_fingerprint = pem_fingerprint(unwrapping.public_key_pem())
            material = _unwrap(unwrapping, token.wrapping_algorithm, wrapped_key_material)
        finally:
            self._d.custody.drop_key(name)
        public_pem, stored = _checked_material(key, fmt, material)
        now = self._d.clock()
        with self._d.transaction() as conn:
            locked = self._locked(conn, ctx, ref, "key.import")
            _check_importable(locked)
            _check_token(_TOKENS.get(conn, token_id, for_update=True), locked, now)
            if not _TOKENS.mark_used(conn, token_id, now):
                raise InvalidArgument("import_token has already been used: request new "
                                      "import parameters")
            number = max((v.version for v in locked.versions), default=0) + 1
            wrapped = (None if stored is None else self._d.custody.wrap_material(
                locked.namespace, kek, locked.id, number, locked.algorithm, stored))
            self._d.keys.insert_version(conn, locked.id, NewVersion(
                version=number, state=str(VersionState.ACTIVE), wrapped_material=wrapped,
                public_key_pem=public_pem, created_at=now))
            state, activation = locked.state, locked.activation_date
            if state == KeyState.PRE_ACTIVE and (activation is None or activation <= now):
                state, activation = KeyState.ACTIVE, activation or now
            self._d.keys.update(conn, locked.id, primary_version=number, state=str(state),
                                activation_date=activation, updated_at=now)
            self._d.keys.record_event(conn, key_id=locked.id, action="import",
                                      from_state=str(locked.state), to_state=str(state),
                                      principal=ctx.actor, at=now, version=number,
                                      reason="public key only" if stored is None else None)
            result = self._reload(conn, locked)
        ctx.key_version = number
        self._lookup.forget(key)
        return result


def _checked_material(key: Key, fmt: str, material: bytes) -> tuple[str | None, bytes | None]:
    """(public key PEM or None, material to store or None for a public key alone), after
    checking it against the key's algorithm (crypto/ load_private / load_public)."""
    spec = get_spec(key.algorithm)
    if fmt == "spki":
        if key.purpose.value not in ("sign", "encrypt", "kem", "wrap"):
            raise InvalidArgument(f"a {key.purpose} key cannot be imported as a public key")
        return load_public(spec, import_public_key(spec, material)).public_key_pem(), None
    stored = import_private_material(spec, fmt, material)
    handle = load_private(spec, stored)
    return (handle.public_key_pem() if spec.asymmetric else None), stored

"""KMIP's raw cryptographic operations on managed keys (issue 5 §2: Encrypt, Decrypt,
Sign, Signature Verify, MAC, MAC Verify; KMIP 2.1 §6.1).

A KMIP client names the mode, the padding and the IV itself (crypto/raw.py runs them).
Such an operation is checked exactly as keykeeper's own one of the same purpose
(service/operations.py): the same permission (``encrypt``, ``decrypt``, ``sign``,
``verify``, ``mac``, ``verify_mac``), the namespace's rate limit, the state and
crypto-period check of the one version the KMIP object is (Use.PROTECT for encrypt, sign
and MAC, Use.PROCESS for the others), one unit of the version's usage count per protect
operation, and the audit record's key, namespace and version (the processor writes the
record). Only a key of the operation's purpose runs, in its own family (one purpose per
key, DESIGN.md): AES_*_GCM keys run AES-ECB/CBC/CTR/GCM/CCM, CHACHA20_POLY1305 keys
ChaCha20 and ChaCha20-Poly1305, RSA_OAEP_* keys RSA-OAEP (any offered hash) and
PKCS#1 v1.5 encryption, RSA_PSS_* / RSA_PKCS1_* keys PSS and PKCS#1 v1.5 signatures,
ECDSA_* keys ECDSA, HMAC_* keys HMAC. The material comes from the version's loaded handle
(custody); an HSM-protected key answers Operation_Not_Supported.

Decryption answers the one uniform DecryptionFailed for anything wrong with the data; RSA
PKCS#1 v1.5 decryption is refused outright (a padding oracle; RawModeNotSupported).

Both directions for the raw block cipher. A symmetric key's material also seals
keykeeper's own AES-GCM / ChaCha20-Poly1305 ciphertexts, whose nonces are public. A raw
mode that hands the caller the cipher's forward output for an input it chooses -- ECB or
CBC encryption (even with a random IV: E(P xor IV) for a chosen P), CTR, GCM or ChaCha20
with a caller-chosen IV/nonce, the ChaCha20 stream, CTR decryption, any multi-part stream
(its parts come out before the tag is checked) -- is an encryption *and* a decryption
oracle for every ciphertext of the key: it needs the ``encrypt`` and the ``decrypt``
permission both. A caller holding only one runs the modes that stay one-way: AES-GCM,
AES-CCM, AES-CTR and ChaCha20-Poly1305 encryption with a server-drawn IV (Random IV, or
no IV given), and ECB, CBC, GCM, CCM, ChaCha20-Poly1305 decryption.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from keykeeper.crypto import raw, raw_pk
from keykeeper.crypto.raw_params import RawParams
from keykeeper.crypto.registry import Purpose, get_spec
from keykeeper.domain.keys import Key
from keykeeper.domain.states import Use
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound
from keykeeper.service.context import RequestContext
from keykeeper.service.operations import Crypto
from keykeeper.service.raw_streams import RawStreamsMixin, StreamTable

__all__ = ["DEFAULT_IV_BYTES", "MissingIV", "RawCrypto", "RawEncrypted"]

T = TypeVar("T")

DEFAULT_IV_BYTES = {"CBC": 16, "CTR": 16, "GCM": 12, "CCM": 12, "CHACHA20": 12,
                    "CHACHA20_POLY1305": 12}
"""The size of an IV drawn for a Random IV request without an IV Length."""

_FAMILY_ALGORITHM = {"aes_gcm": "AES", "chacha20_poly1305": "CHACHA20", "rsa_oaep": "RSA",
                     "rsa_pss": "RSA", "rsa_pkcs1": "RSA", "ecdsa": "ECDSA", "hmac": "HMAC"}
_ACCEPTED = {"AES": ("AES",), "CHACHA20": ("CHACHA20", "CHACHA20_POLY1305"),
             "RSA": ("RSA",), "ECDSA": ("ECDSA", "EC"), "HMAC": ("HMAC",)}


class MissingIV(InvalidArgument):
    """A decryption without the IV/Counter/Nonce its mode needs: KMIP answers
    ``Invalid_Message`` (as the KMIP 2.1 profile test CS-BC-M-11 expects)."""

    kmip_reason = "Invalid_Message"


@dataclass(frozen=True, slots=True)
class RawEncrypted:
    """An Encrypt answer: the ciphertext, the IV the server drew (None when the caller
    gave one), and the AEAD tag (GCM, CCM, ChaCha20-Poly1305)."""

    data: bytes
    iv: bytes | None = None
    tag: bytes | None = None

    def __repr__(self) -> str:
        return f"RawEncrypted({len(self.data)} bytes)"


def _family(key: Key) -> tuple[str, str]:
    spec = get_spec(key.algorithm)
    fam = _FAMILY_ALGORITHM.get(spec.family)
    if fam is None:
        raise raw.RawModeNotSupported(f"KMIP raw cryptographic operations do not support "
                                      f"{key.algorithm} keys")
    return spec.family, fam


def _check_algorithm(params: RawParams, family_algorithm: str, key: Key) -> str:
    """The algorithm to run: the request's (checked against the key's family) or the
    key's. 3DES and anything else not of the key's family: InvalidArgument."""
    asked = params.algorithm
    if asked is None:
        return family_algorithm
    if asked not in _ACCEPTED[family_algorithm]:
        raise InvalidArgument(f"cryptographic algorithm {asked[:32]} does not match the key "
                              f"({key.algorithm})")
    return "CHACHA20_POLY1305" if asked == "CHACHA20_POLY1305" else family_algorithm


def _iv_for(params: RawParams, mode: str, iv: bytes | None) -> tuple[bytes | None, bool]:
    """(IV to use, drawn here?) for an encryption: the caller's, else a random one (a
    Random IV request, or no IV given for a mode that needs one)."""
    if mode == "ECB":
        return None, False
    if params.random_iv and iv is not None:
        raise InvalidArgument("give no IV/Counter/Nonce with Random IV true")
    if iv is not None:
        return iv, False
    if params.iv_length is not None:
        if params.iv_length <= 0 or params.iv_length % 8:
            raise InvalidArgument("IV Length must be a positive multiple of 8 bits")
        return raw.random_iv(params.iv_length // 8), True
    return raw.random_iv(DEFAULT_IV_BYTES.get(mode, 16)), True


def _chacha_mode(params: RawParams, algorithm: str, aad: bytes | None,
                 tag: bytes | None) -> str:
    """CHACHA20 (the stream) or CHACHA20_POLY1305 (AEAD: mode AEAD, a Tag Length, AAD or a
    tag, or the algorithm asked by name)."""
    if params.mode not in (None, "AEAD"):
        raise InvalidArgument(f"block cipher mode {params.mode[:32]} does not apply to "
                              "ChaCha20")
    if (algorithm == "CHACHA20_POLY1305" or params.mode == "AEAD"
            or params.tag_length is not None or aad is not None or tag is not None):
        return "CHACHA20_POLY1305"
    return "CHACHA20"


class RawCrypto(RawStreamsMixin):
    """The six operations, and multi-part Encrypt / Decrypt (service/raw_streams.py);
    ``crypto`` is the service's :class:`Crypto`, whose selection, checks and usage
    counting these reuse."""

    def __init__(self, crypto: Crypto) -> None:
        self._c = crypto
        self._streams = StreamTable()

    def _both(self, ctx: RequestContext, key: Key, other: str) -> None:
        """A raw symmetric mode that exposes the block cipher or its keystream to the
        caller (module docstring) needs the ``other`` direction's permission too."""
        self._c._authz.require_key(ctx, other, key)

    def _count_one(self, key: Key, version: int) -> None:
        self._c._counted(key, version, lambda: None)

    def _stream_args(self, ctx: RequestContext, key: Key, family: str, fam_alg: str,
                     params: RawParams,
                     encrypt: bool, iv: bytes | None,
                     aad: bytes | None) -> tuple[str, str, bytes | None, bool]:
        """(algorithm, mode, IV, drawn here?) of a multi-part operation's first part."""
        self._both(ctx, key, "decrypt" if encrypt else "encrypt")
        algorithm = _check_algorithm(params, fam_alg, key)
        if family == "chacha20_poly1305":
            if _chacha_mode(params, algorithm, aad, None) != "CHACHA20":
                raise raw.RawModeNotSupported("multi-part ChaCha20-Poly1305 is not supported")
            algorithm = mode = "CHACHA20"
        elif family == "aes_gcm":
            mode = params.mode or "GCM"
        else:
            raise raw.RawModeNotSupported(f"multi-part operations are not supported with "
                                          f"{key.algorithm} keys")
        if encrypt:
            use_iv, drawn = _iv_for(params, mode, iv)
            return algorithm, mode, use_iv, drawn
        if mode != "ECB" and iv is None:
            raise MissingIV("decryption needs the IV/Counter/Nonce")
        return algorithm, mode, iv, False

    def key(self, ctx: RequestContext, key_id: str) -> Key:
        """The key ``key_id`` as the caller may know it (NotFound otherwise): read before
        the operation to take the object's stored Cryptographic Parameters."""
        key = self._c._lookup.get(ctx, key_id)
        if not self._c._authz.can_see(ctx, key):
            raise NotFound(f"key '{key_id}' not found")
        return key

    def _material(self, ctx: RequestContext, key_id: str, version: int, purpose: Purpose,
                  op: str, use: Use) -> tuple[Key, raw.RawKey, str, str]:
        key = self._c._key(ctx, key_id, purpose, op)
        family, fam_alg = _family(key)
        handle = self._c._handle(ctx, key, version, use)
        return key, raw.raw_key(handle), family, fam_alg

    def _protect(self, key: Key, version: int, op: Callable[[], T]) -> T:
        return self._c._counted(key, version, op)

    # -- encrypt purpose --------------------------------------------------------------------
    def encrypt(self, ctx: RequestContext, key_id: str, version: int, params: RawParams,
                data: bytes, *, iv: bytes | None = None,
                aad: bytes | None = None) -> RawEncrypted:
        """Encrypt ``data`` with version ``version`` of ``key_id`` (KMIP 2.1 §6.1.16).
        InvalidArgument for parameters the key cannot run; FailedPrecondition (wrong
        purpose, state, period, usage limit); RawModeNotSupported (HSM keys)."""
        key, material, family, fam_alg = self._material(
            ctx, key_id, version, Purpose.ENCRYPT, "encrypt", Use.PROTECT)
        algorithm = _check_algorithm(params, fam_alg, key)
        if family == "rsa_oaep":
            padding = params.padding or "OAEP"
            hash_name = params.hash or get_spec(key.algorithm).hash_name or "SHA256"
            out = self._protect(key, version, lambda: raw_pk.rsa_encrypt(
                material, padding, data, hash_name=hash_name,
                mgf_hash=params.mgf_hash or hash_name, label=params.label))
            return RawEncrypted(out)
        if family == "chacha20_poly1305":
            mode = _chacha_mode(params, algorithm, aad, None)
            nonce, drawn = _iv_for(params, mode, iv)
            assert nonce is not None
            if mode == "CHACHA20" or not drawn:
                self._both(ctx, key, "decrypt")
            if mode == "CHACHA20":
                out = self._protect(key, version, lambda: raw.chacha20(
                    material, nonce, data, params.initial_counter or 0))
                return RawEncrypted(out, nonce if drawn else None)
            ct, tag = self._protect(key, version, lambda: raw.chacha20_poly1305_encrypt(
                material, nonce, data, aad or b"", params.tag_length))
            return RawEncrypted(ct, nonce if drawn else None, tag)
        mode = params.mode or "GCM"
        if mode not in raw.AES_MODES:
            raise InvalidArgument(f"block cipher mode {mode[:32]} is not supported with AES")
        use_iv, drawn = _iv_for(params, mode, iv)
        if not (drawn and mode in ("GCM", "CCM", "CTR")):
            self._both(ctx, key, "decrypt")
        sealed, aes_tag = self._protect(key, version, lambda: raw.aes_encrypt(
            material, mode, data, iv=use_iv, padding_name=params.padding,
            aad=aad or b"", tag_length=params.tag_length))
        return RawEncrypted(sealed, use_iv if drawn else None, aes_tag)

    def decrypt(self, ctx: RequestContext, key_id: str, version: int, params: RawParams,
                data: bytes, *, iv: bytes | None = None, aad: bytes | None = None,
                tag: bytes | None = None) -> bytes:
        """Decrypt (KMIP 2.1 §6.1.11); DecryptionFailed, one uniform error, for any data
        that does not decrypt; InvalidArgument for parameters (a missing IV included)."""
        key, material, family, fam_alg = self._material(
            ctx, key_id, version, Purpose.ENCRYPT, "decrypt", Use.PROCESS)
        algorithm = _check_algorithm(params, fam_alg, key)
        if family == "rsa_oaep":
            hash_name = params.hash or get_spec(key.algorithm).hash_name or "SHA256"
            return raw_pk.rsa_decrypt(material, params.padding or "OAEP", data,
                                      hash_name=hash_name,
                                      mgf_hash=params.mgf_hash or hash_name,
                                      label=params.label)
        if family == "chacha20_poly1305":
            mode = _chacha_mode(params, algorithm, aad, tag)
            if iv is None:
                raise MissingIV("decryption needs the IV/Counter/Nonce")
            if mode == "CHACHA20":
                self._both(ctx, key, "encrypt")
                return raw.chacha20(material, iv, data, params.initial_counter or 0)
            if tag is None:
                raise InvalidArgument("ChaCha20-Poly1305 decryption needs the tag")
            return raw.chacha20_poly1305_decrypt(material, iv, data, tag, aad or b"")
        mode = params.mode or "GCM"
        if mode not in raw.AES_MODES:
            raise InvalidArgument(f"block cipher mode {mode[:32]} is not supported with AES")
        if mode != "ECB" and iv is None:
            raise MissingIV("decryption needs the IV/Counter/Nonce")
        if mode == "CTR":
            self._both(ctx, key, "encrypt")
        return raw.aes_decrypt(material, mode, data, iv=iv, padding_name=params.padding,
                               aad=aad or b"", tag=tag)

    # -- sign purpose -----------------------------------------------------------------------
    def _signature(self, key: Key, family: str, params: RawParams) -> tuple[str, str]:
        spec = get_spec(key.algorithm)
        hash_name = params.hash or spec.hash_name or "SHA256"
        if family == "ecdsa":
            if params.padding not in (None, "NONE"):
                raise InvalidArgument("ECDSA takes no padding method")
            return "", hash_name
        default = "PSS" if family == "rsa_pss" else "PKCS1_V1_5"
        return params.padding or default, hash_name

    def sign(self, ctx: RequestContext, key_id: str, version: int, params: RawParams,
             data: bytes, *, prehashed: bool = False) -> bytes:
        """Sign ``data`` (or the digest ``data`` with ``prehashed``: KMIP Digested Data;
        KMIP 2.1 §6.1.50). RSA: PSS or PKCS#1 v1.5; ECDSA: DER."""
        key, material, family, fam_alg = self._material(
            ctx, key_id, version, Purpose.SIGN, "sign", Use.PROTECT)
        _check_algorithm(params, fam_alg, key)
        padding, hash_name = self._signature(key, family, params)
        if family == "ecdsa":
            return self._protect(key, version, lambda: raw_pk.ecdsa_sign(
                material, hash_name, data, prehashed=prehashed))
        return self._protect(key, version, lambda: raw_pk.rsa_sign(
            material, padding, hash_name, data, prehashed=prehashed,
            mgf_hash=params.mgf_hash, salt_length=params.salt_length))

    def verify(self, ctx: RequestContext, key_id: str, version: int, params: RawParams,
               data: bytes, signature: bytes, *, prehashed: bool = False) -> bool:
        """True when ``signature`` is valid (KMIP 2.1 §6.1.51); False for any other."""
        key, material, family, fam_alg = self._material(
            ctx, key_id, version, Purpose.SIGN, "verify", Use.PROCESS)
        _check_algorithm(params, fam_alg, key)
        padding, hash_name = self._signature(key, family, params)
        if family == "ecdsa":
            return raw_pk.ecdsa_verify(material, hash_name, data, signature,
                                       prehashed=prehashed)
        return raw_pk.rsa_verify(material, padding, hash_name, data, signature,
                                 prehashed=prehashed, mgf_hash=params.mgf_hash,
                                 salt_length=params.salt_length)

    # -- mac purpose ------------------------------------------------------------------------
    def _mac_hash(self, key: Key, params: RawParams) -> str:
        if params.algorithm not in (None, "HMAC"):
            raise InvalidArgument(f"cryptographic algorithm {params.algorithm[:32]} does not "
                                  f"match the key ({key.algorithm})")
        return params.hash or get_spec(key.algorithm).hash_name or "SHA256"

    def mac(self, ctx: RequestContext, key_id: str, version: int, params: RawParams,
            data: bytes) -> bytes:
        """The full-length HMAC of ``data`` (KMIP 2.1 §6.1.29)."""
        key, material, family, _ = self._material(
            ctx, key_id, version, Purpose.MAC, "mac", Use.PROTECT)
        if family != "hmac":
            raise FailedPrecondition(f"key '{key.ref}' ({key.algorithm}) is no HMAC key")
        hash_name = self._mac_hash(key, params)
        return self._protect(key, version, lambda: raw.hmac_tag(material, hash_name, data))

    def verify_mac(self, ctx: RequestContext, key_id: str, version: int, params: RawParams,
                   data: bytes, mac: bytes) -> bool:
        """True when ``mac`` is the full-length HMAC of ``data`` (KMIP 2.1 §6.1.30)."""
        key, material, family, _ = self._material(
            ctx, key_id, version, Purpose.MAC, "verify-mac", Use.PROCESS)
        if family != "hmac":
            raise FailedPrecondition(f"key '{key.ref}' ({key.algorithm}) is no HMAC key")
        return raw.hmac_verify(material, self._mac_hash(key, params), data, mac)

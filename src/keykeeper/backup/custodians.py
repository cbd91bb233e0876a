"""Who can open an archive: Shamir shares shown once, and custodians' public keys.

Chosen per backup (docs/backup-format.md, Custody):

* **shares**: the backup key split into N Shamir shares with threshold M over GF(2^8)
  (custody/shamir.py). A share is text ``kkb1.<backup id>.<base64url(share || check)>``;
  ``check`` is the first 4 bytes of SHA-256 over the backup id and the share, so a
  mistyped share or one of another backup is named as such.
* **custodian public keys**: RSA-4096 or larger, OAEP with SHA-256 (RFC 8017 §7.1), or the
  hybrid of X25519 (RFC 7748) and ML-KEM-768 (FIPS 203): both shared secrets go into
  HKDF-SHA256, whose output key wraps with AES-256-GCM. With a custodian threshold M >= 2
  the backup key is split into one Shamir share per custodian, each wrapped to that
  custodian, so M of them must be present; with M = 1 each custodian's entry wraps the
  whole backup key.

A custodian key file is PEM: one RSA ``PUBLIC KEY``, or two (X25519 and ML-KEM-768) for
the hybrid; the private file holds the matching PKCS#8 ``PRIVATE KEY`` block(s).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keykeeper.backup.errors import ArchiveInvalid, WrongBackupKey
from keykeeper.backup.format import b64 as _b64
from keykeeper.backup.format import unb64 as _unb64
from keykeeper.backup.keys import KEY_SIZE
from keykeeper.custody import shamir
from keykeeper.errors import InvalidArgument

__all__ = ["HYBRID", "RSA", "CustodianPrivateKey", "CustodianPublicKey", "format_share",
           "generate_custodian_key", "load_private_keys", "load_public_key", "parse_share",
           "protect", "recover"]

RSA = "rsa-oaep-sha256"
HYBRID = "x25519-mlkem768-hkdf-sha256-aes256gcm"
MIN_RSA_BITS = 4096
SHARE_PREFIX = "kkb1"
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)
_HYBRID_INFO = b"keykeeper/backup/custodian/hybrid/v1"




def _blocks(pem: bytes) -> list[bytes]:
    return [m.group(0) for m in _PEM_BLOCK.finditer(pem)]


# -- keys -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustodianPublicKey:
    kind: str
    fingerprint: str
    rsa: rsa.RSAPublicKey | None = None
    x25519: x25519.X25519PublicKey | None = None
    mlkem: mlkem.MLKEM768PublicKey | None = None


@dataclass(frozen=True, repr=False)
class CustodianPrivateKey:
    kind: str
    fingerprint: str
    rsa: rsa.RSAPrivateKey | None = None
    x25519: x25519.X25519PrivateKey | None = None
    mlkem: mlkem.MLKEM768PrivateKey | None = None

    def __repr__(self) -> str:
        return f"CustodianPrivateKey({self.kind}, {self.fingerprint})"


def _spki(key: Any) -> bytes:
    data: bytes = key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


def _fingerprint(*keys: Any) -> str:
    return "sha256:" + hashlib.sha256(b"".join(_spki(k) for k in keys)).hexdigest()


def _public(keys: list[Any]) -> CustodianPublicKey:
    if len(keys) == 1 and isinstance(keys[0], rsa.RSAPublicKey):
        if keys[0].key_size < MIN_RSA_BITS:
            raise InvalidArgument(f"a custodian RSA key must have at least {MIN_RSA_BITS} bits "
                                  f"(this one has {keys[0].key_size})")
        return CustodianPublicKey(RSA, _fingerprint(keys[0]), rsa=keys[0])
    xs = [k for k in keys if isinstance(k, x25519.X25519PublicKey)]
    ms = [k for k in keys if isinstance(k, mlkem.MLKEM768PublicKey)]
    if len(keys) == 2 and len(xs) == 1 and len(ms) == 1:
        return CustodianPublicKey(HYBRID, _fingerprint(xs[0], ms[0]), x25519=xs[0],
                                  mlkem=ms[0])
    raise InvalidArgument("a custodian key is one RSA-4096 public key, or an X25519 and an "
                          "ML-KEM-768 public key (PEM)")


def load_public_key(pem: bytes) -> CustodianPublicKey:
    """A custodian's public key from its PEM file; InvalidArgument if it is not one."""
    blocks = _blocks(pem)
    try:
        keys = [serialization.load_pem_public_key(b) for b in blocks]
    except (ValueError, TypeError):
        raise InvalidArgument("a custodian key file holds a PEM block that is not a public "
                              "key") from None
    return _public(keys)


def load_private_keys(pem: bytes) -> CustodianPrivateKey:
    """A custodian's private key from its PEM file (unencrypted PKCS#8); InvalidArgument if
    it is not one."""
    try:
        keys = [serialization.load_pem_private_key(b, password=None) for b in _blocks(pem)]
    except (ValueError, TypeError):
        raise InvalidArgument("a custodian private key file holds a PEM block that is not "
                              "an unencrypted private key") from None
    public = _public([k.public_key() for k in keys])
    if public.kind == RSA:
        assert isinstance(keys[0], rsa.RSAPrivateKey)
        return CustodianPrivateKey(RSA, public.fingerprint, rsa=keys[0])
    xk = next(k for k in keys if isinstance(k, x25519.X25519PrivateKey))
    mk = next(k for k in keys if isinstance(k, mlkem.MLKEM768PrivateKey))
    return CustodianPrivateKey(HYBRID, public.fingerprint, x25519=xk, mlkem=mk)


def generate_custodian_key(kind: str = HYBRID) -> tuple[bytes, bytes]:
    """A new custodian key pair: ``(private PEM, public PEM)``. ``kind`` is ``rsa``
    (RSA-4096) or ``hybrid`` (X25519 + ML-KEM-768) or their full names."""
    enc, priv_fmt = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    pub_fmt, none = serialization.PublicFormat.SubjectPublicKeyInfo, serialization.NoEncryption()
    keys: list[Any]
    if kind in ("rsa", RSA):
        keys = [rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)]
    elif kind in ("hybrid", HYBRID):
        keys = [x25519.X25519PrivateKey.generate(), mlkem.MLKEM768PrivateKey.generate()]
    else:
        raise InvalidArgument("custodian key kind is 'rsa' or 'hybrid'")
    private = b"".join(k.private_bytes(enc, priv_fmt, none) for k in keys)
    public = b"".join(k.public_key().public_bytes(enc, pub_fmt) for k in keys)
    return private, public


# -- wrapping to one custodian ----------------------------------------------------------------
def _aad(backup_id: str, index: int, fp: str) -> bytes:
    return b"\x00".join((b"keykeeper/backup/custodian/v1", backup_id.encode(),
                         str(index).encode(), fp.encode()))


def _hybrid_key(ss_x: bytes, ss_m: bytes, eph: bytes, ct: bytes, fp: str) -> bytes:
    info = _HYBRID_INFO + b"\x00" + hashlib.sha256(eph + ct + fp.encode()).digest()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(ss_x + ss_m)


def _wrap(pub: CustodianPublicKey, payload: bytes, aad: bytes) -> dict[str, Any]:
    if pub.kind == RSA:
        assert pub.rsa is not None
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                            label=aad)
        return {"wrapped": _b64(pub.rsa.encrypt(payload, oaep))}
    assert pub.x25519 is not None and pub.mlkem is not None
    eph = x25519.X25519PrivateKey.generate()
    eph_raw = eph.public_key().public_bytes_raw()
    ss_m, ct = pub.mlkem.encapsulate()
    kek = _hybrid_key(eph.exchange(pub.x25519), ss_m, eph_raw, ct, pub.fingerprint)
    nonce = os.urandom(12)
    return {"ephemeral": _b64(eph_raw), "kem_ciphertext": _b64(ct),
            "wrapped": _b64(nonce + AESGCM(kek).encrypt(nonce, payload, aad))}


def _unwrap(priv: CustodianPrivateKey, entry: dict[str, Any], aad: bytes) -> bytes:
    wrapped = _unb64(entry.get("wrapped"), "a custodian entry")
    try:
        if priv.kind == RSA:
            assert priv.rsa is not None
            return priv.rsa.decrypt(wrapped, padding.OAEP(
                mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=aad))
        assert priv.x25519 is not None and priv.mlkem is not None
        eph = _unb64(entry.get("ephemeral"), "a custodian entry")
        ct = _unb64(entry.get("kem_ciphertext"), "a custodian entry")
        ss_x = priv.x25519.exchange(x25519.X25519PublicKey.from_public_bytes(eph))
        kek = _hybrid_key(ss_x, priv.mlkem.decapsulate(ct), eph, ct, priv.fingerprint)
        return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)
    except (ValueError, InvalidTag):
        raise WrongBackupKey(f"custodian key {priv.fingerprint} does not open its entry in "
                             "this archive") from None


# -- shares -----------------------------------------------------------------------------------
def _share_check(backup_id: str, share: bytes) -> bytes:
    return hashlib.sha256(backup_id.encode() + b"\x00" + share).digest()[:4]


def format_share(backup_id: str, share: bytes) -> str:
    body = base64.urlsafe_b64encode(share + _share_check(backup_id, share)).rstrip(b"=")
    return f"{SHARE_PREFIX}.{backup_id}.{body.decode('ascii')}"


def parse_share(text: str, backup_id: str) -> bytes:
    """The share bytes of ``text``; WrongBackupKey naming what is wrong."""
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] != SHARE_PREFIX:
        raise WrongBackupKey(f"not a backup share (expected '{SHARE_PREFIX}.<backup id>.<...>')")
    if parts[1] != backup_id:
        raise WrongBackupKey(f"a share belongs to backup {parts[1]}, not to this archive "
                             f"({backup_id})")
    try:
        raw = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except (binascii.Error, ValueError):
        raise WrongBackupKey("a share is not valid base64url (mistyped?)") from None
    share, check = raw[:-4], raw[-4:]
    if len(share) != KEY_SIZE + 1 or _share_check(backup_id, share) != check:
        raise WrongBackupKey("a share fails its checksum (mistyped or altered)")
    return share


# -- the custody block of the header ----------------------------------------------------------
def protect(key: bytes, backup_id: str, *, shares: int | None, threshold: int | None,
            custodians: Sequence[CustodianPublicKey],
            custodian_threshold: int | None) -> tuple[dict[str, Any], list[str]]:
    """The header's ``custody`` object and the share texts (shown once, never stored).
    InvalidArgument when nobody could open the archive, or for a bad threshold."""
    if not shares and not custodians:
        raise InvalidArgument("choose who can open the backup: shares (--shares N "
                              "--threshold M) and/or custodian public keys")
    custody: dict[str, Any] = {"shares": None, "custodians": None}
    texts: list[str] = []
    if shares:
        if threshold is None:
            threshold = 2 if shares >= 2 else 0
        if threshold < 1:
            raise InvalidArgument("a single share opens the backup alone: ask for it "
                                  "explicitly with a threshold of 1")
        texts = [format_share(backup_id, s) for s in shamir.split(key, shares, threshold)]
        custody["shares"] = {"count": shares, "threshold": threshold}
    elif threshold is not None:
        raise InvalidArgument("a share threshold needs a number of shares")
    if custodians:
        fps = [c.fingerprint for c in custodians]
        if len(set(fps)) != len(fps):
            raise InvalidArgument("a custodian key was given twice")
        m = custodian_threshold
        if m is None:
            if len(custodians) == 1:
                raise InvalidArgument("one custodian key opens the backup alone: ask for it "
                                      "explicitly with a custodian threshold of 1")
            m = 2
        if not 1 <= m <= len(custodians):
            raise InvalidArgument(f"the custodian threshold must be 1..{len(custodians)}")
        payloads = ([key] * len(custodians) if m == 1
                    else shamir.split(key, len(custodians), m))
        entries = []
        for i, (c, payload) in enumerate(zip(custodians, payloads, strict=True), start=1):
            entries.append({"index": i, "kind": c.kind, "fingerprint": c.fingerprint,
                            **_wrap(c, payload, _aad(backup_id, i, c.fingerprint))})
        custody["custodians"] = {"threshold": m, "count": len(custodians), "entries": entries}
    elif custodian_threshold is not None:
        raise InvalidArgument("a custodian threshold needs custodian keys")
    return custody, texts


def recover(custody: dict[str, Any], backup_id: str, *, shares: Sequence[str] = (),
            private_keys: Sequence[CustodianPrivateKey] = ()) -> bytes:
    """The backup key from ``shares`` or custodian ``private_keys`` (the caller checks it
    against the header's key check). WrongBackupKey for too few, unknown or mistyped
    ones; ArchiveInvalid for a malformed custody block."""
    if shares:
        block = custody.get("shares")
        if not isinstance(block, dict):
            raise WrongBackupKey("this archive was not split into shares; open it with "
                                 "custodian private keys")
        threshold = block.get("threshold")
        if not isinstance(threshold, int) or threshold < 1:
            raise ArchiveInvalid("the archive's share threshold is malformed")
        parsed = [parse_share(s, backup_id) for s in shares]
        if len({p[-1] for p in parsed}) != len(parsed):
            raise WrongBackupKey("a share was given twice")
        if len(parsed) < threshold:
            raise WrongBackupKey(f"too few shares: {len(parsed)} given, {threshold} needed")
        return parsed[0][:-1] if threshold == 1 and len(parsed) == 1 else \
            shamir.combine(parsed)
    if not private_keys:
        raise WrongBackupKey("give shares or custodian private keys to open the archive")
    block = custody.get("custodians")
    if not isinstance(block, dict) or not isinstance(block.get("entries"), list):
        raise WrongBackupKey("this archive holds no custodian public-key entries; open it "
                             "with shares")
    m = block.get("threshold")
    if not isinstance(m, int) or m < 1:
        raise ArchiveInvalid("the archive's custodian threshold is malformed")
    opened: list[bytes] = []
    seen: set[str] = set()
    for priv in private_keys:
        entry = next((e for e in block["entries"] if isinstance(e, dict)
                      and e.get("fingerprint") == priv.fingerprint), None)
        if entry is None:
            raise WrongBackupKey(f"custodian key {priv.fingerprint} is not a custodian of "
                                 "this archive")
        if priv.fingerprint in seen:
            continue
        seen.add(priv.fingerprint)
        index = entry.get("index")
        if not isinstance(index, int):
            raise ArchiveInvalid("a custodian entry is malformed")
        opened.append(_unwrap(priv, entry, _aad(backup_id, index, priv.fingerprint)))
    if m == 1:
        return opened[0]
    if len(opened) < m:
        raise WrongBackupKey(f"too few custodians: {len(opened)} given, {m} needed")
    return shamir.combine(opened)

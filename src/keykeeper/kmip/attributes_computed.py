"""The attributes keykeeper's key model decides, for one KMIP object (a key version, or
its public part; kmip/uids.py).

Mapping (issue 5 §3): Object Type from the algorithm (symmetric, or private/public key);
Cryptographic Algorithm and Length from the algorithm spec; Cryptographic Usage Mask
from the key's purpose and the part (KMIP 2.1 §4.17: a private signing key Signs, its
public key Verifies); State from the key's and the version's states (KMIP has no
"suspended": a disabled or pending-destruction key's versions are Deactivated, KMIP
2.1 §3.22 allows no use there either); dates from the version and the key's lifecycle;
Links between a private and a public key and between consecutive versions (Re-Key,
KMIP 2.1 §6.1.41: Replacement / Replaced Object Link); Name: the keykeeper name, for the
primary version's main object (KMIP moves a Name to the replacement on Re-Key); Lease
Time from the server's setting (KEYKEEPER_KMIP_LEASE_TIME); Protection Storage Mask
Hardware for an HSM-protected version's secret part, else Software.
Values are in normal form: ``(name, index, Item under the attribute's tag)``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from cryptography.hazmat.primitives import serialization

from keykeeper.crypto.registry import ALGORITHMS, Purpose
from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.domain.states import KeyState, VersionState
from keykeeper.kmip.stored_data import stored_object_type
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    CertificateType,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    DRBGAlgorithm,
    HashingAlgorithm,
    KeyFormatType,
    LinkType,
    NameType,
    ObjectType,
    ProtectionStorageMask,
    RevocationReasonCode,
    RNGAlgorithm,
    State,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.uids import ObjectId

__all__ = ["Computed", "computed_attributes", "is_asymmetric", "kmip_state"]

Computed = list[tuple[str, int, Item]]

_GENERATED_NAME = re.compile(r"kmip-[0-9a-f]{16}\Z")

_FAMILY_ALGORITHM = {
    "aes_gcm": "AES", "aes_kwp": "AES", "chacha20_poly1305": "CHACHA20_POLY1305",
    "rsa_oaep": "RSA", "rsa_pss": "RSA", "rsa_pkcs1": "RSA", "rsa_aes_kwp": "RSA",
    "ecdsa": "ECDSA", "ed25519": "ED25519",
}

_U = CryptographicUsageMask
_MASKS: dict[Purpose, tuple[int, int, int]] = {  # (symmetric, private, public)
    Purpose.ENCRYPT: (_U.ENCRYPT | _U.DECRYPT, _U.DECRYPT, _U.ENCRYPT),
    Purpose.SIGN: (_U.SIGN | _U.VERIFY, _U.SIGN, _U.VERIFY),
    Purpose.MAC: (_U.MAC_GENERATE | _U.MAC_VERIFY, 0, 0),
    Purpose.WRAP: (_U.WRAP_KEY | _U.UNWRAP_KEY, _U.UNWRAP_KEY, _U.WRAP_KEY),
}


def is_asymmetric(key: Key) -> bool:
    spec = ALGORITHMS.get(key.algorithm)
    return bool(spec and spec.asymmetric)


def kmip_state(key: Key, version: KeyVersion) -> int:
    """The KMIP State of a key version (KMIP 2.1 §3.22)."""
    vs = version.state
    if vs == VersionState.DESTROYED:
        return int(State.DESTROYED)
    if vs == VersionState.DESTROYED_COMPROMISED:
        return int(State.DESTROYED_COMPROMISED)
    if vs == VersionState.COMPROMISED:
        return int(State.COMPROMISED)
    if key.state == KeyState.PRE_ACTIVE:
        return int(State.PRE_ACTIVE)
    if vs == VersionState.ACTIVE and key.state == KeyState.ACTIVE:
        return int(State.ACTIVE)
    return int(State.DEACTIVATED)


def _dt(tag: int, when: datetime) -> Item:
    return Item(tag, ItemType.DATE_TIME, int(when.timestamp()))


def _enum(tag: int, value: int) -> Item:
    return Item(tag, ItemType.ENUMERATION, int(value))


def _link(kind: int, uid: str) -> Item:
    return Item.structure(int(Tag.LINK), [_enum(int(Tag.LINK_TYPE), kind),
                                          Item(int(Tag.LINKED_OBJECT_IDENTIFIER),
                                               ItemType.TEXT_STRING, uid)])


def _algorithm(key: Key) -> int | None:
    spec = ALGORITHMS.get(key.algorithm)
    if spec is None:
        return None
    name = _FAMILY_ALGORITHM.get(spec.family)
    if spec.family == "hmac" and spec.hash_name:
        name = "HMAC_" + spec.hash_name
    member = getattr(CryptographicAlgorithm, name, None) if name else None
    return None if member is None else int(member)


def _public_digest(pem: str, rsa: bool) -> Item:
    """Digest of a public key (KMIP 2.1 §4.12): SHA-256 of its DER in the object's Key
    Format Type -- PKCS#1 for RSA, else X.509 SubjectPublicKeyInfo. A Digest stored at
    Register replaces it."""
    fmt = serialization.PublicFormat.PKCS1 if rsa else \
        serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.load_pem_public_key(pem.encode("ascii")).public_bytes(
        serialization.Encoding.DER, fmt)
    return Item.structure(int(Tag.DIGEST), [
        _enum(int(Tag.HASHING_ALGORITHM), HashingAlgorithm.SHA_256),
        Item(int(Tag.DIGEST_VALUE), ItemType.BYTE_STRING, hashlib.sha256(der).digest()),
        _enum(int(Tag.KEY_FORMAT_TYPE),
              KeyFormatType.PKCS_1 if rsa else KeyFormatType.X_509)])


def _rng(asym: bool) -> Item:
    """The generator of a key made here (KMIP 2.1 §4.43): asymmetric keys come from
    OpenSSL's default RAND (CTR_DRBG over AES-256, through pyca/cryptography); secret
    keys from ``os.urandom`` (the kernel's generator, which KMIP has no name for)."""
    if not asym:
        return Item.structure(int(Tag.RANDOM_NUMBER_GENERATOR), [
            _enum(int(Tag.RNG_ALGORITHM), RNGAlgorithm.UNSPECIFIED)])
    return Item.structure(int(Tag.RANDOM_NUMBER_GENERATOR), [
        _enum(int(Tag.RNG_ALGORITHM), RNGAlgorithm.DRBG),
        _enum(int(Tag.CRYPTOGRAPHIC_ALGORITHM), CryptographicAlgorithm.AES),
        Item(int(Tag.CRYPTOGRAPHIC_LENGTH), ItemType.INTEGER, 256),
        _enum(int(Tag.DRBG_ALGORITHM), DRBGAlgorithm.CTR)])


def computed_attributes(key: Key, oid: ObjectId, *, lease_time: int = 0,
                        never_activated: bool = False) -> Computed:
    """Every attribute the key model gives the object ``oid`` (which must name an
    existing version of ``key``). ``lease_time``: the server's Lease Time in seconds
    (KmipSettings.lease_time), given to every object; 0: none. ``never_activated``: the
    key left Pre-Active without being Active (KmipAttributeStore.never_activated), so
    it has no Activation Date (KMIP 2.1 §4.1); else one for every key not pre-active
    (its ``activation_date``, or its creation for a key active from creation, whose
    ``activation_date`` is null)."""
    version = key.version(oid.version)
    assert version is not None
    spec = ALGORITHMS.get(key.algorithm)
    asym = is_asymmetric(key)
    out: Computed = []

    def add(name: str, item: Item, index: int = 0) -> None:
        out.append((name, index, item))

    add("Unique Identifier", Item(int(Tag.UNIQUE_IDENTIFIER), ItemType.TEXT_STRING, str(oid)))
    add("Short Unique Identifier", Item(int(Tag.SHORT_UNIQUE_IDENTIFIER), ItemType.BYTE_STRING,
                                        hashlib.sha256(str(oid).encode()).digest()))
    stored = stored_object_type(key.algorithm)   # Secret Data, Opaque Object
    otype = stored or ((ObjectType.PUBLIC_KEY if oid.public else ObjectType.PRIVATE_KEY)
                       if asym else ObjectType.SYMMETRIC_KEY)
    add("Object Type", _enum(int(Tag.OBJECT_TYPE), otype))
    if stored == ObjectType.CERTIFICATE:   # the others: kmip/certificate.py
        add("Certificate Type", _enum(int(Tag.CERTIFICATE_TYPE), CertificateType.X_509))
    alg = _algorithm(key)
    if alg is not None:
        add("Cryptographic Algorithm", _enum(int(Tag.CRYPTOGRAPHIC_ALGORITHM), alg))
    if spec is not None and stored is None:
        add("Cryptographic Length",
            Item(int(Tag.CRYPTOGRAPHIC_LENGTH), ItemType.INTEGER, spec.key_bits))
    masks = _MASKS.get(key.purpose)
    if masks is not None:
        mask = masks[2] if oid.public else masks[1] if asym else masks[0]
        if mask:
            add("Cryptographic Usage Mask",
                Item(int(Tag.CRYPTOGRAPHIC_USAGE_MASK), ItemType.INTEGER, int(mask)))
    add("State", _enum(int(Tag.STATE), kmip_state(key, version)))
    add("Initial Date", _dt(int(Tag.INITIAL_DATE), version.created_at))
    add("Original Creation Date", _dt(int(Tag.ORIGINAL_CREATION_DATE), version.created_at))
    last = max([key.updated_at, version.created_at]
               + [d for d in (version.deactivated_at, version.destroyed_at,
                              version.compromised_at) if d is not None])
    add("Last Change Date", _dt(int(Tag.LAST_CHANGE_DATE), last))
    if lease_time > 0:
        add("Lease Time", Item(int(Tag.LEASE_TIME), ItemType.INTERVAL, lease_time))
    if key.state == KeyState.PRE_ACTIVE:
        if key.activation_date is not None:
            add("Activation Date", _dt(int(Tag.ACTIVATION_DATE), key.activation_date))
    elif not never_activated:
        start = key.activation_date or key.created_at
        add("Activation Date", _dt(int(Tag.ACTIVATION_DATE), max(start, version.created_at)))
    deactivated = version.deactivated_at or key.deactivation_date
    if deactivated is not None:
        add("Deactivation Date", _dt(int(Tag.DEACTIVATION_DATE), deactivated))
    if version.destroyed_at is not None:
        add("Destroy Date", _dt(int(Tag.DESTROY_DATE), version.destroyed_at))
    if version.compromised_at is not None:
        add("Compromise Occurrence Date",
            _dt(int(Tag.COMPROMISE_OCCURRENCE_DATE), version.compromised_at))
        add("Compromise Date", _dt(int(Tag.COMPROMISE_DATE), version.compromised_at))
        add("Revocation Reason", Item.structure(int(Tag.REVOCATION_REASON), [
            _enum(int(Tag.REVOCATION_REASON_CODE), RevocationReasonCode.KEY_COMPROMISE)]))
    links: list[Item] = []
    if asym and oid.public:
        links.append(_link(LinkType.PRIVATE_KEY_LINK, f"{key.id}/{oid.version}"))
    elif asym and not version.public_only:
        links.append(_link(LinkType.PUBLIC_KEY_LINK, f"{key.id}/{oid.version}/public"))
    suffix = "/public" if oid.public else ""
    numbers = [v.version for v in key.versions]
    later = [n for n in numbers if n > oid.version]
    earlier = [n for n in numbers if n < oid.version]
    if later:
        links.append(_link(LinkType.REPLACEMENT_OBJECT_LINK, f"{key.id}/{min(later)}{suffix}"))
    if earlier:
        links.append(_link(LinkType.REPLACED_OBJECT_LINK, f"{key.id}/{max(earlier)}{suffix}"))
    for i, link in enumerate(links):
        add("Link", link, i)
    if (not oid.public and oid.version == key.primary_version
            and not _GENERATED_NAME.match(key.name)):
        add("Name", Item.structure(int(Tag.NAME), [
            Item(int(Tag.NAME_VALUE), ItemType.TEXT_STRING, key.name),
            _enum(int(Tag.NAME_TYPE), NameType.UNINTERPRETED_TEXT_STRING)]))
    if key.description and not oid.public:
        add("Description", Item(int(Tag.DESCRIPTION), ItemType.TEXT_STRING, key.description))
    secret = not oid.public and stored != ObjectType.CERTIFICATE   # a certificate is public
    exportable = key.exportable or not secret
    add("Extractable", Item(int(Tag.EXTRACTABLE), ItemType.BOOLEAN, exportable))
    add("Never Extractable", Item(int(Tag.NEVER_EXTRACTABLE), ItemType.BOOLEAN, not exportable))
    add("Sensitive", Item(int(Tag.SENSITIVE), ItemType.BOOLEAN, secret and not exportable))
    add("Always Sensitive",
        Item(int(Tag.ALWAYS_SENSITIVE), ItemType.BOOLEAN, secret and not exportable))
    add("Fresh", Item(int(Tag.FRESH), ItemType.BOOLEAN, True))
    if key.origin == "generated":
        add("Random Number Generator", _rng(asym))
    rsa = key.algorithm.startswith("RSA")
    if oid.public and version.public_key_pem is not None:
        add("Digest", _public_digest(version.public_key_pem, rsa))
    fmt = (KeyFormatType.PKCS_1 if rsa else KeyFormatType.X_509 if oid.public
           else KeyFormatType.PKCS_8) if asym else KeyFormatType.RAW
    if stored not in (ObjectType.OPAQUE_OBJECT, ObjectType.CERTIFICATE):   # no Key Block
        add("Key Format Type", _enum(int(Tag.KEY_FORMAT_TYPE), fmt))
    # Where the material is protected (KMIP 2.0 and later): Hardware for an HSM-protected
    # version's secret or private key (a token object, custody/hsm/); else Software: kept
    # wrapped under the namespace KEK and used in the server's memory (a public key is
    # kept in clear).
    storage = ProtectionStorageMask.HARDWARE if version.in_hsm and not oid.public \
        else ProtectionStorageMask.SOFTWARE
    add("Protection Storage Mask", Item(int(Tag.PROTECTION_STORAGE_MASK), ItemType.INTEGER,
                                        int(storage)))
    return out

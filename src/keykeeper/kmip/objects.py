"""KMIP managed objects over keykeeper keys (issue 5 §3): resolve a Unique Identifier to
one key version through the service layer, and translate between KMIP's key description
(Object Type, Cryptographic Algorithm and Length, Usage Mask, State) and keykeeper's
(algorithm, purpose, key and version states).

Algorithm choice (KMIP algorithm + length + usage mask -> keykeeper algorithm):

=====================  ==========================  =========================================
KMIP algorithm         length                      keykeeper algorithm
=====================  ==========================  =========================================
AES                    128, 256 (192 once the      AES_128_GCM / AES_256_GCM (encrypt);
                       registry has AES_192_GCM)   AES_256_KWP (wrap) when the mask is
                                                   Wrap Key / Unwrap Key only
ChaCha20(Poly1305)     256                         CHACHA20_POLY1305
HMAC-SHA256/384/512    the hash size               HMAC_SHA256 / 384 / 512
RSA                    2048 (legacy policy), 3072, RSA_PSS_n_SHA256 with Sign / Verify in
                       4096                        the mask, else RSA_OAEP_n_SHA256
EC, ECDSA              256, 384, 521 (or the        ECDSA_P256_SHA256 / P384_SHA384 /
                       Recommended Curve)          P521_SHA512
Ed25519                255                         ED25519
=====================  ==========================  =========================================

Anything else (3DES, DSA, AES-192, ...) is ``Invalid_Field``. KMIP states are keykeeper's
(kmip/attributes_computed.py ``kmip_state``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from keykeeper.crypto.registry import ALGORITHMS, get_spec
from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.errors import NotFound
from keykeeper.kmip.attributes import planned_labels
from keykeeper.kmip.attributes_computed import kmip_state
from keykeeper.kmip.call import Call, KmipError, object_not_found
from keykeeper.kmip.public_state import public_state
from keykeeper.kmip.stored_data import stored_object_type
from keykeeper.kmip.template import Template
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    ObjectType,
)
from keykeeper.kmip.uids import ObjectId, parse_uid
from keykeeper.service.key_args import CreateKey
from keykeeper.service.kmip_attributes import LabelChange
from keykeeper.service.kmip_keys import Digester, KmipKeys, Material

__all__ = [
    "KmipObject",
    "choose_algorithm",
    "key_algorithm",
    "keykeeper_name",
    "kmip_keys",
    "new_key",
    "resolve",
    "text_item",
]

M = CryptographicUsageMask
_WRAP_ONLY = M.WRAP_KEY | M.UNWRAP_KEY
_SIGNING = M.SIGN | M.VERIFY
_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")
_KEY_ID_SHAPE = re.compile(r"k-[0-9a-f]{32}\Z")


def kmip_keys(call: Call) -> KmipKeys:
    """The KMIP key service of ``call`` (service/kmip_keys.py)."""
    service = call.services.kmip_keys
    if service is None:  # built by build_services; absent only in a partial test setup
        raise KmipError("Operation_Not_Supported", "this server has no KMIP key service")
    return service


@dataclass(frozen=True, slots=True)
class KmipObject:
    """One managed object: ``version`` of ``key``; ``public``: its public key."""

    oid: ObjectId
    key: Key
    version: KeyVersion

    @property
    def uid(self) -> str:
        return str(self.oid)

    @property
    def public(self) -> bool:
        return self.oid.public

    @property
    def object_type(self) -> ObjectType:
        stored = stored_object_type(self.key.algorithm)
        if stored is not None:   # Secret Data, Opaque Object (kmip/stored_data.py)
            return stored
        spec = get_spec(self.key.algorithm)
        if not spec.asymmetric:
            return ObjectType.SYMMETRIC_KEY
        if self.public or self.version.public_only:
            return ObjectType.PUBLIC_KEY
        return ObjectType.PRIVATE_KEY

    @property
    def pair_public(self) -> bool:
        """The public object of a key pair (not a public key registered alone)."""
        return self.public and not self.version.public_only

    @property
    def state(self) -> int:
        """The KMIP State (kmip/attributes_computed.py, the one mapping); a key pair's
        public object may have its own (kmip/public_state.py)."""
        if self.pair_public:
            own = public_state(self.key, self.version.version)
            if own is not None:
                return own
        return kmip_state(self.key, self.version)

    def uid_of(self, version: int, public: bool | None = None) -> str:
        """The UID of another version of the same key (same half unless ``public``)."""
        half = self.public if public is None else public
        return str(ObjectId(self.key.id, version, half))


def resolve(call: Call, uid: str, operation: str = "key.get") -> KmipObject:
    """The object ``uid`` names, if the caller may run ``operation`` on its key.
    Object_Not_Found (Item_Not_Found before KMIP 2.0; call.py ``object_not_found``) for a
    UID that is not one of ours, a key the caller may not see, a version that does not
    exist, or ``/public`` of a key without one."""
    oid = parse_uid(uid)
    if oid is None:
        raise object_not_found()
    try:
        key = kmip_keys(call).key(call.ctx, oid.key_id, operation)
    except NotFound:
        raise object_not_found() from None
    version = key.version(oid.version)
    if version is None:
        raise object_not_found()
    call.ctx.key_version = oid.version
    if oid.public and not get_spec(key.algorithm).asymmetric:
        raise object_not_found()
    # A public key registered alone: "{key}/{v}" and "{key}/{v}/public" name it both.
    return KmipObject(oid, key, version)


_RSA_BITS = (2048, 3072, 4096)
_EC_BITS = {256: "ECDSA_P256_SHA256", 384: "ECDSA_P384_SHA384", 521: "ECDSA_P521_SHA512"}
_HMAC = {"HMAC_SHA256": 256, "HMAC_SHA384": 384, "HMAC_SHA512": 512}


def _alg_name(value: int) -> str:
    try:
        return CryptographicAlgorithm(value).name
    except ValueError:
        return f"{value:#x}"


def choose_algorithm(algorithm: int | None, length: int | None, mask: int | None,
                     *, pair: bool = False) -> str:
    """The keykeeper algorithm for a KMIP description (module docstring). ``pair``: the
    request is a Create Key Pair (asymmetric algorithms only); otherwise symmetric only
    for Create. KmipError(Invalid_Field) for what keykeeper does not offer."""
    if algorithm is None:
        raise KmipError("Invalid_Field", "Cryptographic Algorithm is required")
    name = _alg_name(algorithm)
    bits = length
    chosen: str | None = None
    if name == "AES":
        bits = 256 if bits is None else bits
        if f"AES_{bits}_GCM" not in ALGORITHMS:   # AES-192 only if the registry has it
            raise KmipError("Invalid_Field", f"AES keys are 128 or 256 bits here, not {bits}")
        if mask and not (mask & ~int(_WRAP_ONLY)):
            if bits != 256:
                raise KmipError("Invalid_Field", "a key-wrapping AES key is 256 bits here "
                                "(AES_256_KWP, RFC 5649)")
            chosen = "AES_256_KWP"
        else:
            chosen = f"AES_{bits}_GCM"
    elif name in ("CHACHA20", "CHACHA20POLY1305", "CHACHA20_POLY1305"):
        if bits not in (None, 256):
            raise KmipError("Invalid_Field", "ChaCha20 keys are 256 bits")
        chosen = "CHACHA20_POLY1305"
    elif name in _HMAC:
        if bits not in (None, _HMAC[name]):
            raise KmipError("Invalid_Field", f"{name} keys are {_HMAC[name]} bits here "
                            "(the hash output size)")
        chosen = name
    elif name == "RSA":
        if bits not in _RSA_BITS:
            raise KmipError("Invalid_Field", f"RSA keys are 2048 (where the namespace policy "
                            f"allows it), 3072 or 4096 bits, not {bits}")
        kind = "PSS" if mask and mask & int(_SIGNING) else "OAEP"
        chosen = f"RSA_{kind}_{bits}_SHA256"
    elif name in ("EC", "ECDSA"):
        if bits not in _EC_BITS:
            raise KmipError("Invalid_Field", f"EC keys are on P-256, P-384 or P-521, not "
                            f"{bits} bits")
        chosen = _EC_BITS[bits]
    elif name == "ED25519":
        chosen = "ED25519"
    if chosen is None:
        raise KmipError("Invalid_Field", f"Cryptographic Algorithm {name} is not offered "
                        "(3DES, DSA and others are refused: NIST SP 800-131A Rev 2)")
    if pair != get_spec(chosen).asymmetric:
        what = "Create Key Pair" if pair else "Create"
        raise KmipError("Invalid_Field", f"{what} does not make {name} keys")
    return chosen


def keykeeper_name(call: Call, namespace: str, name: str | None) -> str:
    """The KMIP Name as the key's name when it is a valid keykeeper name that is free
    in ``namespace``; else ``kmip-`` and 16 hex digits."""
    if (name is not None and _NAME.match(name) and not _KEY_ID_SHAPE.match(name)
            and not kmip_keys(call).name_taken(namespace, name)):
        return name
    return "kmip-" + secrets.token_hex(8)


_FAMILIES = {"aes_gcm": "AES", "aes_kwp": "AES", "chacha20_poly1305": "CHACHA20_POLY1305",
             "rsa_oaep": "RSA", "rsa_pss": "RSA", "rsa_pkcs1": "RSA", "rsa_aes_kwp": "RSA",
             "ecdsa": "EC", "ed25519": "ED25519"}


def key_algorithm(key: Key, version: tuple[int, int] = (2, 1)) -> int | None:
    """The Cryptographic Algorithm of a key (None for ML-DSA / ML-KEM, which KMIP does
    not name); EC keys are ``EC`` from KMIP 1.2 on, ``ECDSA`` before."""
    spec = get_spec(key.algorithm)
    name = _FAMILIES.get(spec.family)
    if spec.family == "hmac":
        name = "HMAC_" + (spec.hash_name or "")
    if name == "EC" and version < (1, 2):
        name = "ECDSA"
    member = None
    for spelling in ((name, name.replace("20_", "20")) if name else ()):
        member = member or getattr(CryptographicAlgorithm, spelling, None)
    return None if member is None else int(member)


def text_item(tag: int, value: str) -> Item:
    return Item(int(tag), ItemType.TEXT_STRING, value)


def new_key(call: Call, template: Template, *, pair: bool, material: Material | None = None,
            algorithm: int | None = None, length: int | None = None,
            store: bool = False, public: bool = False, chosen: str | None = None,
            labels: Mapping[str, str] | None = None) -> Key:
    """Create (or, with ``material``, register) the key a KMIP request describes, through
    the service layer as the caller: namespace ``x-keykeeper-namespace`` or the server's
    KMIP namespace; algorithm from the template (``algorithm`` / ``length`` fill what it
    lacks); name per :func:`keykeeper_name`; exportable from Extractable (default
    ``KmipSettings.extractable_default``; Sensitive true makes it not exportable);
    pre-active unless the Activation Date has come (KMIP 2.1 §6.1.3). Quantum Safe true
    with an algorithm that is not (AlgorithmSpec.quantum_safe): KmipError(General_Failure,
    "NOT_SAFE"). The caller stores the attributes keykeeper does not model
    (kmip/template.py store_template) -- or, with ``store``, they are stored with the
    key, in its transaction (the template's values on version 1, or its public part with
    ``public``, as store_template would). ``chosen``: the keykeeper algorithm, decided
    by the caller (Secret Data, Opaque Object: kmip/stored_data.py); ``labels``: more
    ``kmip.*`` labels written with the attributes (``store`` only)."""
    namespace = template.namespace or call.settings.namespace
    if chosen is None:
        chosen = choose_algorithm(template.algorithm if template.algorithm is not None
                                  else algorithm,
                                  template.length if template.length is not None else length,
                                  template.mask, pair=pair)
    quantum_safe = template.one("Quantum Safe")
    if quantum_safe is not None and quantum_safe.value is True \
            and not ALGORITHMS[chosen].quantum_safe:
        # KMIP 2.1 attribute Quantum Safe: the client asks for a quantum-safe object; the QS
        # profile test case QS-M-2-21 expects General_Failure "NOT_SAFE" (docs/kmip.md).
        raise KmipError("General_Failure", "NOT_SAFE")
    extractable = template.extractable
    sensitive = template.one("Sensitive")
    if sensitive is not None and sensitive.value is True:
        extractable = False   # KMIP 1.4 §3.44: never served in clear (keykeeper: not at all)
    args = CreateKey(
        name=keykeeper_name(call, namespace, template.name), namespace=namespace,
        algorithm=chosen,
        exportable=call.settings.extractable_default if extractable is None else extractable,
        activation_date=template.activation_date,
        origin="external" if material is not None else None)
    values = template.values
    extra = dict(labels or {})

    def attributes(created: Key, digest: Digester) -> LabelChange:
        planned = planned_labels(created, values, digest, public=public)
        return lambda current: {**planned(current), **extra}

    wanted = attributes if store and (values or extra) else None
    return kmip_keys(call).create(call.ctx, args, pre_active=True, material=material,
                                  attributes=wanted)

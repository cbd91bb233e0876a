"""Register (KMIP 1.4 §4.3, KMIP 2.1 §6.1.43): a symmetric key, private key or public key
whose material the client gives, stored as one ``external`` keykeeper key (never rotated
here), its material checked as an import is (crypto/keyio.py) and wrapped under the
namespace KEK; or a Secret Data, Opaque Object or X.509 Certificate, stored the same
way (kmip/stored_data.py, kmip/certificate.py). Pre-active until activated or its
Activation Date comes.
Key Format Types taken: kmip/keyblock.py; the one registered in is the object's Key Format
Type attribute, which a Get naming no format answers in. A public key registered alone is
``{key_id}/1/public``; any other object ``{key_id}/1``.
Request: Object Type, Template-Attribute (1.x) or Attributes (2.x), the object.
Response: Unique Identifier."""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.certificate import (
    CERTIFICATE_ALGORITHM,
    DER_ATTRIBUTES,
    parse_certificate,
    registered_attributes,
)
from keykeeper.kmip.keyblock import OBJECT_TAGS, material_description, parse_key_block
from keykeeper.kmip.objects import new_key, text_item
from keykeeper.kmip.stored_data import DATA_TYPE_LABEL, STORED_ALGORITHMS, parse_stored
from keykeeper.kmip.template import read_template
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import ObjectType, Operation
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.kmip_keys import Material

OPERATION = Operation.REGISTER


def handle(call: Call, payload: Item) -> list[Item]:
    otype_item = payload.find(int(Tag.OBJECT_TYPE))
    value = otype_item.value if otype_item is not None else None
    try:
        otype = ObjectType(value) if isinstance(value, int) else None
    except ValueError:
        otype = None
    if otype == ObjectType.CERTIFICATE:
        return _register_certificate(call, payload)
    if otype is not None and otype in STORED_ALGORITHMS:
        return _register_stored(call, payload, otype)
    if otype is None or otype not in OBJECT_TAGS:
        raise KmipError("Invalid_Field", "Register takes Symmetric Keys, Private Keys, "
                        "Public Keys, Secret Data, Opaque Objects and X.509 Certificates "
                        "here")
    managed = payload.find(OBJECT_TAGS[otype])
    if managed is None:
        raise KmipError("Invalid_Field", "the request holds no object of its Object Type")
    material, algorithm, stated = parse_key_block(otype, managed)
    length = stated
    if material.format == "raw" and otype == ObjectType.SYMMETRIC_KEY:
        length = len(material.data) * 8   # the material's own size decides
    inferred = material_description(material)
    if inferred is not None:
        algorithm = algorithm if algorithm is not None else inferred[0]
        length = inferred[1]   # the material's own size decides
    template = read_template(call, payload)
    _check_length(length, stated, template.length)
    block = managed.find(int(Tag.KEY_BLOCK))
    fmt = block.find(int(Tag.KEY_FORMAT_TYPE)) if block is not None else None
    if fmt is not None and isinstance(fmt.value, int):
        # Kept as the object's Key Format Type: a Get naming no format answers in it.
        template.values["Key Format Type"] = [
            Item(int(Tag.KEY_FORMAT_TYPE), ItemType.ENUMERATION, fmt.value)]
    if template.algorithm is None and algorithm is None:
        raise KmipError("Invalid_Field", "Cryptographic Algorithm is required")
    public = otype == ObjectType.PUBLIC_KEY
    # The attributes are stored with the key, in its transaction (as Create does).
    key = new_key(call, template, pair=otype != ObjectType.SYMMETRIC_KEY, material=material,
                  algorithm=algorithm, length=length, store=True, public=public)
    uid = f"{key.id}/1" + ("/public" if public else "")
    call.placeholder = uid
    return [text_item(int(Tag.UNIQUE_IDENTIFIER), uid)]


_KEY_ONLY = ("Cryptographic Algorithm", "Cryptographic Length", "Cryptographic Parameters",
             "Cryptographic Domain Parameters")


def _register_stored(call: Call, payload: Item, otype: ObjectType) -> list[Item]:
    """A Secret Data or Opaque Object (kmip/stored_data.py): one ``external`` key of
    algorithm SECRET_DATA / OPAQUE_DATA, its data type in the key's labels and a Secret
    Data's Key Format Type as its attribute, in the key's transaction."""
    tag = int(Tag.SECRET_DATA if otype == ObjectType.SECRET_DATA else Tag.OPAQUE_OBJECT)
    managed = payload.find(tag)
    if managed is None or managed.type is not ItemType.STRUCTURE:
        raise KmipError("Invalid_Field", "the request holds no object of its Object Type")
    stored = parse_stored(otype, managed)
    template = read_template(call, payload)
    kind = "Secret Data" if otype == ObjectType.SECRET_DATA else "Opaque Object"
    for name in _KEY_ONLY:  # data, not a key: a Locate by them must not find it
        if name in template.values:
            raise KmipError("Invalid_Field", f"{name} does not apply to a {kind}")
    if stored.fmt is not None:
        template.values["Key Format Type"] = [
            Item(int(Tag.KEY_FORMAT_TYPE), ItemType.ENUMERATION, stored.fmt)]
    key = new_key(call, template, pair=False, material=Material("raw", stored.data),
                  store=True, chosen=STORED_ALGORITHMS[otype],
                  labels={DATA_TYPE_LABEL: str(stored.data_type)})
    uid = f"{key.id}/1"
    call.placeholder = uid
    return [text_item(int(Tag.UNIQUE_IDENTIFIER), uid)]


_SERVER_SET = ("Certificate Length", "Digest", *sorted(DER_ATTRIBUTES))


def _register_certificate(call: Call, payload: Item) -> list[Item]:
    """An X.509 Certificate (kmip/certificate.py): one ``external`` key of algorithm
    X509_CERTIFICATE whose material is the DER, always Extractable (a certificate is
    public), with its Certificate Length and Digest stored in the key's transaction.
    Invalid_Field for key attributes, for the attributes the server reads from the
    certificate, for a Certificate Type attribute other than X.509, and for Extractable
    false or Sensitive true."""
    managed = payload.find(int(Tag.CERTIFICATE))
    if managed is None or managed.type is not ItemType.STRUCTURE:
        raise KmipError("Invalid_Field", "the request holds no Certificate")
    der = parse_certificate(managed)
    template = read_template(call, payload)
    for name in (*_KEY_ONLY, *_SERVER_SET):
        if name in template.values:
            raise KmipError("Invalid_Field", f"{name} does not apply to a Certificate or is "
                            "read from it by the server")
    for item in template.values.get("Certificate Type", []):
        if item.type is not ItemType.ENUMERATION or item.value != 1:   # X.509 (its own)
            raise KmipError("Invalid_Field", "the Certificate Type attribute contradicts "
                            "the Certificate (X.509)")
    extractable, sensitive = template.one("Extractable"), template.one("Sensitive")
    if (extractable is not None and extractable.value is not True) \
            or (sensitive is not None and sensitive.value is not False):
        raise KmipError("Invalid_Field", "a Certificate is public: always Extractable, "
                        "never Sensitive")
    template.values["Extractable"] = [Item(int(Tag.EXTRACTABLE), ItemType.BOOLEAN, True)]
    template.values.update(registered_attributes(der))
    key = new_key(call, template, pair=False, material=Material("raw", der), store=True,
                  chosen=CERTIFICATE_ALGORITHM)
    uid = f"{key.id}/1"
    call.placeholder = uid
    return [text_item(int(Tag.UNIQUE_IDENTIFIER), uid)]


def _check_length(own: int | None, *stated: int | None) -> None:
    """A Cryptographic Length the client states (in the Key Block or the attributes) must
    be the material's own (KMIP 2.1 §4.12): Invalid_Field otherwise. Ed25519's 255 bits
    may be stated as 256."""
    for length in stated:
        if length is not None and own is not None and length != own \
                and not (own == 255 and length == 256):
            raise KmipError("Invalid_Field", f"Cryptographic Length {length} contradicts the "
                            f"key material ({own} bits)")

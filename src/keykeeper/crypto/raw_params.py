"""The parameters of one raw cryptographic operation (the content of a KMIP Cryptographic
Parameters structure, KMIP 2.1 §7.6, in plain names), and how they merge.

Names: ``algorithm`` one of ``AES``, ``CHACHA20``, ``CHACHA20_POLY1305``, ``RSA``,
``ECDSA``, ``HMAC`` (a KMIP ``HMAC_SHAx`` algorithm sets ``hash`` too), or an unsupported
name kept as given so the refusal can say it; ``mode`` ``ECB`` ``CBC`` ``CTR`` ``GCM``
``CCM`` ``AEAD`` (others kept, then refused); ``padding`` ``NONE`` ``PKCS5`` ``OAEP``
``PKCS1_V1_5`` ``PSS``; hashes as in :data:`keykeeper.crypto.raw.HASHES` (``SHA256``);
lengths as KMIP gives them: ``iv_length`` and the GCM field lengths in bits, ``tag_length``
and ``salt_length`` in bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

__all__ = ["RawParams"]


@dataclass(frozen=True, slots=True)
class RawParams:
    algorithm: str | None = None
    mode: str | None = None
    padding: str | None = None
    hash: str | None = None
    key_role_type: int | None = None
    signature_algorithm: str | None = None   # a KMIP Digital Signature Algorithm name
    random_iv: bool | None = None
    iv_length: int | None = None             # bits
    tag_length: int | None = None            # bytes
    fixed_field_length: int | None = None    # bits
    invocation_field_length: int | None = None
    counter_length: int | None = None        # bits
    initial_counter: int | None = None
    salt_length: int | None = None           # bytes
    mask_generator: str | None = None        # "MGF1"
    mgf_hash: str | None = None
    label: bytes | None = None               # OAEP P Source
    trailer_field: int | None = None

    def over(self, defaults: RawParams | None) -> RawParams:
        """These parameters, each unset one taken from ``defaults`` (the object's own
        Cryptographic Parameters attribute: KMIP 2.1 §6.1.16, "the server SHALL use the
        Cryptographic Parameters attribute of the key if not given")."""
        if defaults is None:
            return self
        changes = {f.name: getattr(defaults, f.name) for f in fields(self)
                   if getattr(self, f.name) is None and getattr(defaults, f.name) is not None}
        return replace(self, **changes) if changes else self

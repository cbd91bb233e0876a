"""Raw python-pkcs11 access to a SoftHSM test token, beside keykeeper's own Token: what
is on the token, and what the token can do (to skip with the reason when it cannot)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pkcs11
import pkcs11.exceptions as p11x
from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass

from tests.support.softhsm import LIBRARY, SoftToken

_oaep: dict[str, str | None] = {}


@contextmanager
def raw_session(soft: SoftToken) -> Iterator[Any]:
    """A logged-in read-write session (login is per process and token: reuse it)."""
    token = pkcs11.lib(LIBRARY).get_token(token_label=soft.label)
    try:
        s = token.open(user_pin=soft.pin, rw=True)
    except p11x.UserAlreadyLoggedIn:
        s = token.open(rw=True)
    try:
        yield s
    finally:
        s.close()


def objects(soft: SoftToken) -> list[dict[str, Any]]:
    """Every key object on the token: class, CKA_ID hex, label and protection flags."""
    out = []
    with raw_session(soft) as s:
        for cls in (ObjectClass.SECRET_KEY, ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            for o in s.get_objects({Attribute.CLASS: cls}):
                entry: dict[str, Any] = {"class": cls, "id": bytes(o[Attribute.ID]).hex(),
                                         "label": o[Attribute.LABEL],
                                         "token": o[Attribute.TOKEN]}
                if cls != ObjectClass.PUBLIC_KEY:
                    for a in (Attribute.SENSITIVE, Attribute.EXTRACTABLE,
                              Attribute.NEVER_EXTRACTABLE, Attribute.LOCAL,
                              Attribute.PRIVATE):
                        entry[a.name] = o[a]
                    try:
                        o[Attribute.VALUE]
                        entry["value_readable"] = True
                    except (p11x.AttributeSensitive, p11x.AttributeTypeInvalid):
                        entry["value_readable"] = False
                out.append(entry)
    return out


def object_count(soft: SoftToken) -> int:
    return len(objects(soft))


def oaep_sha256_label_missing(soft: SoftToken) -> str | None:
    """None if the token decrypts RSA-OAEP with SHA-256 and a label, else why not."""
    if soft.label not in _oaep:
        with raw_session(soft) as s:
            pub, priv = s.generate_keypair(KeyType.RSA, 2048, store=False)
            params = (Mechanism.SHA256, MGF.SHA256, b"label")
            try:
                blob = pub.encrypt(b"x", mechanism=Mechanism.RSA_PKCS_OAEP,
                                   mechanism_param=params)
                priv.decrypt(blob, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=params)
                _oaep[soft.label] = None
            except p11x.PKCS11Error as exc:
                _oaep[soft.label] = (f"the token lacks CKM_RSA_PKCS_OAEP with SHA-256 and a "
                                     f"label ({type(exc).__name__}; SoftHSM 2.6 does SHA-1 "
                                     "without a label only)")
            finally:
                pub.destroy()
                priv.destroy()
    return _oaep[soft.label]

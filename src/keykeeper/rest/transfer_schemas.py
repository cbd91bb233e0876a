"""Request and response structs of key import and export (rest/transfer_routes.py).
Binary values are standard base64 with padding (msgspec ``bytes``)."""

from __future__ import annotations

from msgspec import Struct

__all__ = ["ExportRequest", "ExportResponse", "ImportParametersRequest",
           "ImportParametersResponse", "ImportRequest"]


class ImportParametersRequest(Struct, forbid_unknown_fields=True):
    # RSA_AES_KEY_WRAP_SHA256 (default; CKM_RSA_AES_KEY_WRAP) or RSA_OAEP_SHA256.
    wrapping_algorithm: str | None = None
    # Seconds or "12h"; default 24 h, 60 s .. 7 days.
    expires_in: int | str | None = None


class ImportParametersResponse(Struct):
    key_id: str
    import_token: str                 # single use; shown once
    public_key: str                   # RSA-4096 SubjectPublicKeyInfo PEM to wrap with
    wrapping_algorithm: str
    expires_at: str                   # RFC 3339
    wrapping_key_fingerprint: str     # SHA-256 hex of the public key's SPKI DER


class ImportRequest(Struct, forbid_unknown_fields=True):
    import_token: str
    wrapped_key_material: bytes
    # raw | pkcs8 | pkcs1 | sec1 | spki (a public key alone); DER, or PEM for all but raw.
    format: str


class ExportRequest(Struct, forbid_unknown_fields=True):
    version: int | None = None                 # default: the primary version
    wrapping_public_key: str | None = None     # RSA >= 3072, SPKI PEM
    wrapping_key: str | None = None            # or a keykeeper key of purpose "wrap"
    # RSA_AES_KEY_WRAP_SHA256 (default for a public key) | RSA_OAEP_SHA256 |
    # AES_KEY_WRAP_PAD (an AES_256_KWP wrapping_key)
    wrapping_algorithm: str | None = None


class ExportResponse(Struct, omit_defaults=True):
    key_id: str
    key_version: int
    wrapped_key_material: bytes
    format: str                       # raw | pkcs8
    wrapping_algorithm: str
    wrapping_key_fingerprint: str
    wrapping_key: str | None = None
    wrapping_key_version: int | None = None

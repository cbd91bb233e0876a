"""Key import and export routes of the SDK (docs/import-export.md): import parameters,
import of wrapped material, wrapped export. The SDK never wraps or unwraps: the caller
wraps material under ``ImportParameters.public_key`` (RSA-AES key wrap or RSA-OAEP with
SHA-256, e.g. with pyca/cryptography) and unwraps an export with its own private key.

Export is under dual control by default: it raises
:class:`keykeeper.errors.ApprovalRequired` (HTTP 202) naming the approval request, whose
wrapped material the requester claims once approved (``claim_approval``)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from keykeeper.client._http import Http, key_path
from keykeeper.client.models import Key

__all__ = ["ExportedKey", "ImportParameters", "TransferMixin"]


class ImportParameters(msgspec.Struct, frozen=True, kw_only=True):
    """A wrapping public key (RSA-4096 SPKI PEM) and a single-use ``import_token``."""

    key_id: str
    import_token: str
    public_key: str
    wrapping_algorithm: str
    expires_at: datetime
    wrapping_key_fingerprint: str

    def __repr__(self) -> str:
        return f"ImportParameters(key_id={self.key_id!r}, import_token=<hidden>)"


class ExportedKey(msgspec.Struct, frozen=True, kw_only=True):
    """Wrapped material (``raw`` secret key or ``pkcs8`` DER private key, once
    unwrapped) and how it was wrapped."""

    key_id: str
    key_version: int
    wrapped_key_material: bytes
    format: str
    wrapping_algorithm: str
    wrapping_key_fingerprint: str
    wrapping_key: str | None = None
    wrapping_key_version: int | None = None


class TransferMixin:
    _http: Http

    def import_parameters(self, key: str, *, wrapping_algorithm: str | None = None,
                          expires_in: int | str | None = None) -> ImportParameters:
        """``POST /v1/keys/{key}/import-parameters`` for an ``origin="external"`` key.
        ``wrapping_algorithm``: ``RSA_AES_KEY_WRAP_SHA256`` (default) or
        ``RSA_OAEP_SHA256``; ``expires_in``: seconds or "12h" (default 24 h, 60 s .. 7 d).
        FailedPrecondition for a key that does not take imported material."""
        return self._http.call("POST", key_path(key, "import-parameters"), ImportParameters,
                               body={"wrapping_algorithm": wrapping_algorithm,
                                     "expires_in": expires_in})

    def import_key_material(self, key: str, import_token: str, wrapped_key_material: bytes,
                            format: str) -> Key:
        """``POST /v1/keys/{key}/import``: ``wrapped_key_material`` (bytes) wrapped under the
        import parameters' public key; ``format``: raw | pkcs8 | pkcs1 | sec1 | spki. The
        material becomes the key's new primary version; the token is spent.
        InvalidArgument for a bad token, material that does not unwrap or match."""
        return self._http.call("POST", key_path(key, "import"), Key,
                               body={"import_token": import_token, "format": format,
                                     "wrapped_key_material": wrapped_key_material})

    def export_key(self, key: str, *, version: int | None = None,
                   wrapping_public_key: str | None = None, wrapping_key: str | None = None,
                   wrapping_algorithm: str | None = None) -> ExportedKey:
        """``POST /v1/keys/{key}/export``: the version (default: primary) wrapped under
        ``wrapping_public_key`` (RSA >= 3072, SPKI PEM) or ``wrapping_key`` (a keykeeper
        key of purpose wrap). ApprovalRequired under dual control; FailedPrecondition
        for a key that is not exportable."""
        return self._http.call("POST", key_path(key, "export"), ExportedKey,
                               body={"version": version,
                                     "wrapping_public_key": wrapping_public_key,
                                     "wrapping_key": wrapping_key,
                                     "wrapping_algorithm": wrapping_algorithm})

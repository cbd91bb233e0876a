"""The one exception tree of keykeeper.

Every error a caller can see is a :class:`KeykeeperError` subclass with a stable
``code``, an HTTP status and a KMIP Result Reason as class attributes. Each
interface maps the tree once: rest/ to RFC 9457 problem+json, kmip/ to a Result
Reason, cli/ to one line and a non-zero exit status. Nothing chooses a status by
reading message text, and internal error text never reaches a client.

::

    KeykeeperError                 code                 HTTP  KMIP Result Reason
    ├── InvalidArgument            invalid_argument     400   Invalid_Field
    ├── Unauthenticated            unauthenticated      401   Authentication_Not_Successful
    ├── PermissionDenied           permission_denied    403   Permission_Denied
    ├── NotFound                   not_found            404   Item_Not_Found
    ├── AlreadyExists              already_exists       409   Invalid_Field
    ├── FailedPrecondition         failed_precondition  409   Wrong_Key_Lifecycle_State
    │   └── WrongPurpose           failed_precondition  409   Incompatible_Cryptographic_Usage_Mask
    ├── ApprovalRequired           approval_required    202   Operation_Not_Supported
    ├── PayloadTooLarge            payload_too_large    413   Response_Too_Large
    ├── ResourceExhausted          resource_exhausted   429   General_Failure
    ├── DecryptionFailed           decryption_failed    400   Cryptographic_Failure
    ├── Sealed                     sealed               503   General_Failure
    ├── Unavailable                unavailable          503   General_Failure
    └── Internal                   internal             500   General_Failure

``DecryptionFailed`` always carries the same message, whatever went wrong
(wrong key, wrong version, wrong context, tampered bytes, bad encoding), so a
caller learns nothing that could serve as an oracle.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "ApprovalRequired",
    "DecryptionFailed",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "KeykeeperError",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ResourceExhausted",
    "Sealed",
    "Unauthenticated",
    "Unavailable",
    "WrongPurpose",
    "error_for_code",
]


class KeykeeperError(Exception):
    """Base of every error keykeeper reports to a caller.

    ``detail`` is shown to the caller: it must never hold key material,
    plaintext, tokens, passphrases or internal exception text.
    """

    code: str = "internal"
    http_status: int = 500
    kmip_reason: str = "General_Failure"
    title: str = "Internal error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail if detail is not None else self.title
        super().__init__(self.detail)


class InvalidArgument(KeykeeperError):
    code = "invalid_argument"
    http_status = 400
    kmip_reason = "Invalid_Field"
    title = "Invalid argument"


class Unauthenticated(KeykeeperError):
    code = "unauthenticated"
    http_status = 401
    kmip_reason = "Authentication_Not_Successful"
    title = "Missing or invalid credentials"


class PermissionDenied(KeykeeperError):
    code = "permission_denied"
    http_status = 403
    kmip_reason = "Permission_Denied"
    title = "Permission denied"


class NotFound(KeykeeperError):
    code = "not_found"
    http_status = 404
    kmip_reason = "Item_Not_Found"
    title = "Not found"


class AlreadyExists(KeykeeperError):
    code = "already_exists"
    http_status = 409
    kmip_reason = "Invalid_Field"
    title = "Already exists"


class FailedPrecondition(KeykeeperError):
    """Wrong state, wrong purpose, or a disabled key or version."""

    code = "failed_precondition"
    http_status = 409
    kmip_reason = "Wrong_Key_Lifecycle_State"
    title = "Failed precondition"


class WrongPurpose(FailedPrecondition):
    """The key's purpose does not allow the operation (an encrypt key asked for a MAC):
    the same code and HTTP status as FailedPrecondition; in KMIP the Result Reason
    Incompatible_Cryptographic_Usage_Mask (KMIP 2.1 §11, Result Reason; 1.x answers
    Permission_Denied, kmip/versions.py)."""

    kmip_reason = "Incompatible_Cryptographic_Usage_Mask"


class ApprovalRequired(KeykeeperError):
    """The operation waits for M-of-N approval; ``approval_id`` names the request
    (``POST /v1/approvals/{approval_id}/approve``)."""

    code = "approval_required"
    http_status = 202
    kmip_reason = "Operation_Not_Supported"
    title = "Approval required"

    def __init__(self, detail: str | None = None, *, approval_id: str | None = None) -> None:
        super().__init__(detail)
        self.approval_id = approval_id


class PayloadTooLarge(KeykeeperError):
    code = "payload_too_large"
    http_status = 413
    kmip_reason = "Response_Too_Large"
    title = "Payload too large"


class ResourceExhausted(KeykeeperError):
    """A rate limit is exceeded; ``retry_after`` is whole seconds (HTTP ``Retry-After``)."""

    code = "resource_exhausted"
    http_status = 429
    kmip_reason = "General_Failure"
    title = "Resource exhausted"

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class DecryptionFailed(KeykeeperError):
    """The one uniform decryption error: its message never varies."""

    code = "decryption_failed"
    http_status = 400
    kmip_reason = "Cryptographic_Failure"
    title = "Decryption failed"

    def __init__(self, detail: str | None = None) -> None:
        # The detail is deliberately ignored: every decryption failure reads the same.
        super().__init__("decryption failed")


class Sealed(KeykeeperError):
    code = "sealed"
    http_status = 503
    kmip_reason = "General_Failure"
    title = "Keykeeper is sealed"


class Unavailable(KeykeeperError):
    code = "unavailable"
    http_status = 503
    kmip_reason = "General_Failure"
    title = "Service unavailable"


class Internal(KeykeeperError):
    code = "internal"
    http_status = 500
    kmip_reason = "General_Failure"
    title = "Internal error"


_BY_CODE: dict[str, type[KeykeeperError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        ApprovalRequired,
        PayloadTooLarge,
        ResourceExhausted,
        DecryptionFailed,
        Sealed,
        Unavailable,
        Internal,
    )
}


def error_for_code(code: str) -> type[KeykeeperError]:
    """Return the error class for a stable ``code``; unknown codes map to :class:`Internal`."""
    return _BY_CODE.get(code, Internal)

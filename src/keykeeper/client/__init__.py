"""The keykeeper Python SDK: :class:`Client` mirrors the REST API one method per route.

::

    from keykeeper.client import Client

    with Client("http://127.0.0.1:8200", token) as kk:
        kk.create_key("orders", purpose="encrypt")
        ct = kk.encrypt("orders", b"card 4242", context={"order": "42"}).ciphertext
        assert kk.decrypt("orders", ct, context={"order": "42"}).plaintext == b"card 4242"

Files and streams: :func:`encrypt_stream` / :func:`decrypt_stream` (envelope
encryption with a fresh data key per stream, constant memory).

Errors are the classes of :mod:`keykeeper.errors`; :class:`ConnectionFailed` (an
``Unavailable``) means the server could not be reached at all.
"""

from keykeeper.client._alerts import Alert, AlertPage, KeyUsage, UsageCount
from keykeeper.client._audit import (
    AuditChainSummary,
    AuditHead,
    AuditPage,
    AuditProblem,
    AuditRecord,
    AuditReport,
)
from keykeeper.client._backup import BackupCreated, BackupRestored, BackupSigningKey
from keykeeper.client._client import Client
from keykeeper.client._http import DEFAULT_ADDR, ConnectionFailed
from keykeeper.client._lifecycle import (
    BulkRevokeResult,
    CompromisedVersion,
    CompromiseReport,
    PrincipalUsage,
    RevokeError,
    RewrapOutcome,
    UsageTotals,
)
from keykeeper.client._scheduler import JobRun, JobRunResult, SchedulerStatus
from keykeeper.client._transfer import ExportedKey, ImportParameters
from keykeeper.client.approval_models import (
    Approval,
    ApprovalPage,
    ApprovalPolicy,
    ApprovalRule,
    ApprovalVote,
    Namespace,
    NamespaceDeletion,
)
from keykeeper.client.envelope import decrypt_stream, encrypt_stream
from keykeeper.client.identity_models import (
    Grant,
    GrantDeleted,
    NewToken,
    Principal,
    PrincipalDeleted,
    Role,
    RoleDeleted,
    TokenInfo,
    WhoAmI,
)
from keykeeper.client.models import (
    DataKey,
    Decapsulation,
    DecryptItem,
    DecryptResult,
    Encapsulation,
    EncryptItem,
    EncryptResult,
    GeneratedRoot,
    Health,
    InitResult,
    ItemError,
    Key,
    KeyPage,
    KeyVersion,
    MacResult,
    PublicKey,
    RekeyStatus,
    RekeyUpdate,
    SignResult,
    VerifyResult,
)

__all__ = [
    "DEFAULT_ADDR",
    "Alert",
    "AlertPage",
    "Approval",
    "ApprovalPage",
    "ApprovalPolicy",
    "ApprovalRule",
    "ApprovalVote",
    "AuditChainSummary",
    "AuditHead",
    "AuditPage",
    "AuditProblem",
    "AuditRecord",
    "AuditReport",
    "BackupCreated",
    "BackupRestored",
    "BackupSigningKey",
    "BulkRevokeResult",
    "Client",
    "CompromiseReport",
    "CompromisedVersion",
    "ConnectionFailed",
    "DataKey",
    "Decapsulation",
    "DecryptItem",
    "DecryptResult",
    "Encapsulation",
    "EncryptItem",
    "EncryptResult",
    "ExportedKey",
    "GeneratedRoot",
    "Grant",
    "GrantDeleted",
    "Health",
    "ImportParameters",
    "InitResult",
    "ItemError",
    "JobRun",
    "JobRunResult",
    "Key",
    "KeyPage",
    "KeyUsage",
    "KeyVersion",
    "MacResult",
    "Namespace",
    "NamespaceDeletion",
    "NewToken",
    "Principal",
    "PrincipalDeleted",
    "PrincipalUsage",
    "PublicKey",
    "RekeyStatus",
    "RekeyUpdate",
    "RevokeError",
    "RewrapOutcome",
    "Role",
    "RoleDeleted",
    "SchedulerStatus",
    "SignResult",
    "TokenInfo",
    "UsageCount",
    "UsageTotals",
    "VerifyResult",
    "WhoAmI",
    "decrypt_stream",
    "encrypt_stream",
]

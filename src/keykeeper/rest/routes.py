"""The route table: one row per REST route. It drives both the Starlette routing and the
OpenAPI document, and a test checks that every row has a handler and a schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keykeeper.rest import handlers as h
from keykeeper.rest import schemas as s
from keykeeper.rest.alert_routes import alert_routes
from keykeeper.rest.approval_routes import approval_routes
from keykeeper.rest.audit_routes import audit_routes
from keykeeper.rest.backup_routes import backup_routes
from keykeeper.rest.compromise_routes import compromise_routes
from keykeeper.rest.identity_routes import identity_routes
from keykeeper.rest.namespace_routes import namespace_routes
from keykeeper.rest.scheduler_routes import scheduler_routes
from keykeeper.rest.sys_routes import sys_routes
from keykeeper.rest.transfer_routes import transfer_routes

# The data plane: one audit record each, after the operation, and the answer is withheld
# (503) unless it is recorded. Every other non-GET route mutates: its audit ``request``
# record is written before it acts, so it does not take effect unless it is recorded.
DATA_PLANE_OPERATIONS = frozenset((
    "encrypt", "decrypt", "rewrap", "data_key", "sign", "verify", "mac", "verify_mac",
    "encapsulate", "decapsulate", "random"))


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    operation: str               # the audit and metrics name
    handler: Any
    request: type | None         # body struct, or None for no body
    response: Any                # struct type, or a tuple of them (single | batch)
    summary: str
    status: int = 200
    auth: bool = True            # needs a bearer token
    unsealed: bool = True        # answers 503 sealed while sealed
    offload: bool = True         # run in the thread pool (storage- or CPU-bound); False:
                                 # inline on the event loop, except batches (``items``)
    audit: bool = True           # write an audit record (all but the health probe)
    query: tuple[str, ...] = ()  # the query parameters it reads
    mutating: bool | None = None  # audit request record first; None: every non-GET route
                                  # outside DATA_PLANE_OPERATIONS
    endpoint: Any = None         # a streaming ASGI endpoint factory (svc, metrics, route) in
                                 # place of rest/endpoint.py's (rest/backup_routes.py)

    def __post_init__(self) -> None:
        if self.mutating is None:
            object.__setattr__(self, "mutating", self.method != "GET"
                               and self.operation not in DATA_PLANE_OPERATIONS)


K = "/v1/keys/{key}"
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/keys", "key.create", h.create_key, s.CreateKeyRequest, s.KeyOut,
          "Create a key", status=201),
    Route("GET", "/v1/keys", "key.list", h.list_keys, None, s.KeyList,
          "List keys (filters: namespace, state, purpose, label=name=value; paginated)",
          query=("namespace", "state", "purpose", "label", "page_size", "page_token")),
    Route("GET", K, "key.get", h.get_key, None, s.KeyOut, "Show a key"),
    Route("PATCH", K, "key.update", h.update_key, s.UpdateKeyRequest, s.KeyOut,
          "Update description, labels and lifecycle settings (null clears a setting)"),
    Route("GET", K + "/versions", "key.versions", h.list_versions, None, s.VersionList,
          "List key versions"),
    Route("POST", K + "/rotate", "key.rotate", h.rotate, s.Empty, s.KeyOut,
          "Make a new primary version"),
    Route("POST", K + "/disable", "key.disable", h.disable, s.Empty, s.KeyOut, "Disable a key"),
    Route("POST", K + "/enable", "key.enable", h.enable, s.Empty, s.KeyOut, "Enable a key"),
    Route("POST", K + "/schedule-destruction", "key.schedule_destruction",
          h.schedule_destruction, s.ScheduleDestructionRequest, s.KeyOut,
          "Schedule crypto-erasure after pending_days (7..30, default 30)"),
    Route("POST", K + "/cancel-destruction", "key.cancel_destruction", h.cancel_destruction,
          s.Empty, s.KeyOut, "Cancel a scheduled destruction (the key stays disabled)"),
    Route("POST", K + "/compromise", "key.compromise", h.compromise, s.CompromiseRequest,
          s.KeyOut, "Mark a key compromised"),
    Route("POST", K + "/versions/{version}/destroy", "key.destroy_version", h.destroy_version,
          s.Empty, s.VersionOut, "Crypto-erase one version now"),
    Route("POST", K + "/activate", "key.activate", h.activate, s.Empty, s.KeyOut,
          "Activate a pre-active key now (KMIP Activate)"),
    Route("POST", K + "/trim", "key.trim", h.trim, s.TrimRequest, s.KeyOut,
          "Crypto-erase every version below min_available_version (dual control)"),
    Route("POST", K + "/encrypt", "encrypt", h.encrypt, s.EncryptRequest,
          (s.EncryptResult, s.EncryptBatchResponse), "Encrypt one plaintext or a batch",
          offload=False),
    Route("POST", K + "/decrypt", "decrypt", h.decrypt, s.DecryptRequest,
          (s.DecryptResult, s.DecryptBatchResponse), "Decrypt one ciphertext or a batch",
          offload=False),
    Route("POST", K + "/rewrap", "rewrap", h.rewrap, s.RewrapRequest, s.Ciphertext,
          "Re-encrypt under the primary version", offload=False),
    Route("POST", K + "/data-key", "data_key", h.data_key, s.DataKeyRequest, s.DataKeyResponse,
          "Generate a data-encryption key", offload=False),
    Route("POST", K + "/sign", "sign", h.sign, s.SignRequest, s.SignResponse,
          "Sign a message or a digest"),
    Route("POST", K + "/verify", "verify", h.verify, s.VerifyRequest, s.Valid,
          "Verify a signature"),
    Route("POST", K + "/mac", "mac", h.mac, s.MacRequest, s.MacResponse, "Compute a MAC",
          offload=False),
    Route("POST", K + "/verify-mac", "verify_mac", h.verify_mac, s.VerifyMacRequest, s.Valid,
          "Verify a MAC", offload=False),
    Route("GET", K + "/public-key", "public_key", h.public_key, None, s.PublicKeyResponse,
          "Public key (PEM) of an asymmetric key version (?version=N)", offload=False,
          query=("version",)),
    Route("POST", K + "/encapsulate", "encapsulate", h.encapsulate, s.EncapsulateRequest,
          s.EncapsulateResponse, "ML-KEM encapsulation"),
    Route("POST", K + "/decapsulate", "decapsulate", h.decapsulate, s.DecapsulateRequest,
          s.DecapsulateResponse, "ML-KEM decapsulation"),
    Route("POST", "/v1/random", "random", h.random, s.RandomRequest, s.RandomResponse,
          "Random bytes from the OS CSPRNG", offload=False),
)
ROUTES = sys_routes() + ROUTES  # /v1/sys: health, init, unseal, seal, rekey
ROUTES += identity_routes()
ROUTES += approval_routes()
ROUTES += namespace_routes()
ROUTES += audit_routes()
ROUTES += alert_routes()
ROUTES += compromise_routes()
ROUTES += scheduler_routes()
ROUTES += transfer_routes()
ROUTES += backup_routes()

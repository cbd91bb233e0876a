"""The ``/v1/sys`` rows of the route table (rest/routes.py puts them first): health,
init, unseal, generate-root, seal, and rekey in Vault's shape (init -> update with the
current material until the threshold -> new material; docs/seal.md).

Built by a function, called by rest/routes.py once ``Route`` exists."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keykeeper.rest import sys_handlers as h
from keykeeper.rest import sys_schemas as s

if TYPE_CHECKING:
    from keykeeper.rest.routes import Route

__all__ = ["sys_routes"]


def sys_routes() -> tuple[Route, ...]:
    from keykeeper.rest.routes import Route

    return (
        Route("GET", "/v1/sys/health", "sys.health", h.health, None, s.Health,
              "Initialization and seal status (seal_type; shamir progress while sealed)",
              auth=False, unsealed=False, offload=False, audit=False),
        Route("POST", "/v1/sys/init", "sys.init", h.init, s.InitRequest, s.InitResponse,
              "Create the root key with a seal (passphrase | shamir | pkcs11) and the first "
              "admin token (once; the unseal material is shown once)",
              auth=False, unsealed=False),
        Route("POST", "/v1/sys/unseal", "sys.unseal", h.unseal, s.UnsealRequest, s.Health,
              "Unseal with the passphrase, or one share (key) per call until the threshold; "
              "reset; under pkcs11 retry the auto-unseal", auth=False, unsealed=False),
        Route("POST", "/v1/sys/generate-root", "sys.generate_root", h.generate_root,
              s.GenerateRootRequest, s.GenerateRootResponse,
              "Recovery: a 1-hour root token for the holders of the unseal material "
              "(passphrase, or shares with progress; refused under pkcs11)",
              auth=False, unsealed=False),
        Route("POST", "/v1/sys/seal", "sys.seal", h.seal, None, s.Health,
              "Seal: drop the root key from memory", unsealed=False),
        Route("POST", "/v1/sys/rekey/init", "sys.rekey_init", h.rekey_init,
              s.RekeyInitRequest, s.RekeyStatus,
              "Start a rekey to a seal type (and shares); answers the nonce"),
        Route("GET", "/v1/sys/rekey/init", "sys.rekey_status", h.rekey_status, None,
              s.RekeyStatus, "The rekey in progress, if any"),
        Route("DELETE", "/v1/sys/rekey/init", "sys.rekey_cancel", h.rekey_cancel, None,
              s.RekeyStatus, "Cancel the rekey in progress"),
        Route("POST", "/v1/sys/rekey/update", "sys.rekey_update", h.rekey_update,
              s.RekeyUpdateRequest, s.RekeyUpdateResponse,
              "Give current unseal material (passphrase, one share, or nothing under pkcs11) "
              "with the nonce; at the threshold answers the new material once",
              auth=False),
    )

"""The backup rows of the route table (rest/routes.py appends them): create and restore
stream archives through their own ASGI endpoints (rest/backup_stream.py); the signing key
is an ordinary route (issue 7; docs/backup-format.md).

Built by a function, called by rest/routes.py once ``Route`` exists, so that either
module can be imported first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keykeeper.rest import backup_handlers as h
from keykeeper.rest import backup_schemas as s

if TYPE_CHECKING:
    from keykeeper.rest.routes import Route

__all__ = ["backup_routes"]


def _backup_endpoint(svc: Any, metrics: Any, route: Route) -> Any:
    # Imported when the app is built: rest/endpoint.py imports the route table.
    from keykeeper.rest.backup_stream import BackupEndpoint

    return BackupEndpoint(svc, metrics, route)


def _restore_endpoint(svc: Any, metrics: Any, route: Route) -> Any:
    from keykeeper.rest.backup_stream import RestoreEndpoint

    return RestoreEndpoint(svc, metrics, route)


def backup_routes() -> tuple[Route, ...]:
    from keykeeper.rest.routes import Route

    return (
        Route("POST", "/v1/sys/backup", "backup.create", h.create, s.BackupRequest,
              s.BackupStarted,
              "Back up every key (or the keys named) to an encrypted archive for custodians "
              "(shares N of threshold M and/or custodian public keys). Answers "
              "application/x-ndjson: this line, then the archive, streamed; a failure "
              "part-way breaks the connection off before the signed trailer",
              endpoint=_backup_endpoint),
        Route("POST", "/v1/sys/restore", "backup.restore", h.restore, s.RestoreRequest,
              s.RestoreResponse,
              "Restore an archive: the body is one JSON line of these options, then the "
              "archive (at most KEYKEEPER_RESTORE_MAX_BYTES). Into an empty instance; forced "
              "into a non-empty one under dual control (202, then again with approval_id)",
              endpoint=_restore_endpoint),
        Route("GET", "/v1/sys/backup/signing-key", "backup.signing_key", h.signing_key, None,
              s.SigningKey,
              "This instance's backup signing key (Ed25519 PEM) and fingerprint, to pin when "
              "verifying or restoring its archives"),
    )

"""After a crypto-erasure on SQLite: fold the write-ahead log into the database file and
truncate it, so that no page image from before the erasure survives in ``-wal`` (the file
itself runs with ``secure_delete``). Nothing to do on PostgreSQL (see threat-model.md for
its dead tuples and WAL archives)."""

from __future__ import annotations

import logging

from keykeeper.custody.hsm.keys import destroy_hsm_key
from keykeeper.errors import FailedPrecondition, Unavailable
from keykeeper.service.deps import Deps
from keykeeper.store.namespaces import NamespaceRepository

__all__ = ["checkpoint_after_erasure", "destroy_in_hsm"]

log = logging.getLogger("keykeeper.erasure")
_REPO = NamespaceRepository()


def checkpoint_after_erasure(deps: Deps, what: str) -> bool:
    """Checkpoint and truncate SQLite's WAL after erasing ``what`` (for the log); False,
    with a warning logged, if a reader kept it from completing (the pages then leave the
    WAL at the next complete checkpoint)."""
    try:
        with deps.reading() as conn:
            complete = _REPO.checkpoint(conn)
    except Unavailable:
        complete = False
    if not complete:
        log.warning("the SQLite write-ahead log could not be checkpointed after erasing %s: "
                    "old pages stay in it until the next checkpoint", what)
    return complete


def destroy_in_hsm(deps: Deps, cka_ids: list[str]) -> None:
    """Crypto-erase HSM-protected versions: ``C_DestroyObject`` of each token object named
    by ``cka_ids`` (hex), inside the caller's erasure transaction, as its last step. An
    object already gone counts as destroyed (a retry after a rolled-back attempt).
    Raises FailedPrecondition when no HSM is configured and Unavailable when the token
    fails: the transaction then rolls back, and the versions stay as they were (never a
    row erased while its key lives on in the token)."""
    if not cka_ids:
        return
    deps.refuse_in_batch("destroying an HSM-protected key")
    token = deps.custody.hsm
    if token is None:
        raise FailedPrecondition("the key has HSM-protected versions and no HSM is configured "
                                 "on this server: they cannot be destroyed here")
    for cka_id in cka_ids:
        destroy_hsm_key(token, cka_id)

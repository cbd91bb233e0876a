"""After a crypto-erasure on SQLite: fold the write-ahead log into the database file and
truncate it, so that no page image from before the erasure survives in ``-wal`` (the file
itself runs with ``secure_delete``). Nothing to do on PostgreSQL (see threat-model.md for
its dead tuples and WAL archives)."""

from __future__ import annotations

import logging

from keykeeper.errors import Unavailable
from keykeeper.service.deps import Deps
from keykeeper.store.namespaces import NamespaceRepository

__all__ = ["checkpoint_after_erasure"]

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

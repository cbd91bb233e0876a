"""In-process nodes for backup tests: the source (the ``node`` fixture, on each backend)
and a fresh, empty target on either backend, with helpers to make and restore archives."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from keykeeper.backup import ArchiveReader
from keykeeper.backup.keys import fingerprint
from keykeeper.service.backup import Backups
from keykeeper.service.backup_restore import RestoreOptions, RestoreResult
from keykeeper.service.context import RequestContext
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.conftest import PgSchema, pg_available
from tests.integration.conftest import PASSPHRASE, Clock, Node, make_node, node, sqlite_path

__all__ = ["make_archive", "node", "restore", "signer_of", "sqlite_path",
           "target_factory"]


def backups(n: Node) -> Backups:
    assert n.services.backups is not None
    return n.services.backups


def make_archive(n: Node, path: Path, **options: object) -> list[str]:
    """Write an archive of ``n`` to ``path``; returns the shares."""
    ctx = n.ctx()
    b = backups(n)
    options.setdefault("shares", 3)
    options.setdefault("threshold", 2)
    plan = b.create.plan(ctx, **options)  # type: ignore[arg-type]
    with path.open("wb") as f:
        for chunk in b.create.stream(ctx, plan):
            f.write(chunk)
    return plan.shares


def signer_of(path: Path) -> str:
    """The fingerprint of the key that signed the archive at ``path`` (its header's)."""
    with path.open("rb") as f:
        return fingerprint(ArchiveReader(f).header.signer_public)


def restore(n: Node, path: Path, ctx: RequestContext | None = None,
            **options: object) -> RestoreResult:
    """Restore ``path`` into ``n``. A restore accepts only archives signed by the target
    itself or by the signer the restorer pins: unless ``signer`` is given (None: pin
    nothing), the test pins the archive's own signer, as a restorer who trusts its maker
    would (test_restore_rules.py checks the refusal of an unpinned foreign signer)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    options.setdefault("signer", signer_of(path))

    def opener() -> IO[bytes]:
        return path.open("rb")

    return backups(n).restore.restore(ctx or n.ctx(), opener, RestoreOptions(**options),  # type: ignore[arg-type]
                                      archive_sha256=digest)


def _fresh(url: str) -> Node:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    n = make_node(url, Clock())
    n.services.system.init(PASSPHRASE + " target")
    n.services.system.unseal(PASSPHRASE + " target")
    return n


@pytest.fixture
def target_factory(tmp_path: Path) -> Iterator[object]:
    """``target_factory("sqlite" | "postgresql")``: a fresh, initialized, unsealed, empty
    instance (skips when PostgreSQL is not reachable)."""
    made: list[tuple[Node, PgSchema | None]] = []

    def make(backend: str) -> Node:
        schema = None
        if backend == "postgresql":
            if (reason := pg_available()):
                pytest.skip(reason)
            schema = PgSchema()
            url = schema.url
        else:
            url = f"sqlite:///{tmp_path / f'target-{len(made)}.db'}"
        n = _fresh(url)
        made.append((n, schema))
        return n

    yield make
    for n, schema in made:
        n.services.deps.engine.dispose()
        if schema is not None:
            schema.drop()

"""The explicit set of collaborators every service object shares (built in config.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, OperationalError, SQLAlchemyError

from keykeeper.custody.keyring import Custody
from keykeeper.errors import InvalidArgument, KeykeeperError, Unavailable
from keykeeper.store.identity import IdentityRepository
from keykeeper.store.keys import KeyRepository
from keykeeper.store.system import SystemRepository

__all__ = ["Deps", "utcnow"]


# A value the database cannot hold (a NUL character in text on PostgreSQL, an integer
# beyond 64 bits) is the caller's error, not the store's: 400, not 503.
def _bad_value() -> InvalidArgument:
    return InvalidArgument("a value is out of range, or holds characters the key store "
                           "cannot keep (NUL)")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    engine: Engine
    custody: Custody
    clock: Callable[[], datetime] = utcnow
    keys: KeyRepository = field(default_factory=KeyRepository)
    system: SystemRepository = field(default_factory=SystemRepository)
    identity: IdentityRepository = field(default_factory=IdentityRepository)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction per mutating operation; storage errors become ``unavailable``.

        SQLite allows one writer at a time, so writers in this process take a lock first
        instead of failing on ``database is locked``.
        """
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite:
            self._write_lock.acquire()
        try:
            with self.engine.begin() as conn:
                yield conn
        except KeykeeperError:
            raise
        except (DataError, OverflowError):
            raise _bad_value() from None
        except OperationalError:
            raise Unavailable("the key store is unavailable; retry later") from None
        except SQLAlchemyError:
            raise Unavailable("the key store refused the change; retry later") from None
        finally:
            if sqlite:
                self._write_lock.release()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except KeykeeperError:
            raise
        except (DataError, OverflowError):
            raise _bad_value() from None
        except SQLAlchemyError:
            raise Unavailable("the key store is unavailable; retry later") from None

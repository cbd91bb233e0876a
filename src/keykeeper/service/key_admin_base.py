"""What KeyAdmin (service/keys.py) gives the mixins that make it up: its collaborators and
the helpers that resolve, lock and gate a key. One declaration, so the mixins
(key_lifecycle.py, key_import.py, key_export.py) cannot drift apart."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from sqlalchemy import Connection

from keykeeper.domain.keys import Key
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.lookup import KeyLookup

__all__ = ["KeyAdminBase"]


class KeyAdminBase(ABC):
    """The collaborators and helpers KeyAdmin provides to its mixins."""

    _d: Deps
    _lookup: KeyLookup
    _authz: Authorizer

    @abstractmethod
    def _authorized(self, ctx: RequestContext, ref: str, operation: str) -> Key:
        """The key ``ref`` after checking ``operation`` on it (NotFound, PermissionDenied)."""

    @abstractmethod
    def _locked(self, conn: Connection, ctx: RequestContext, ref: str,
                operation: str) -> Key:
        """The key ``ref`` re-read under its row lock in ``conn``, ``operation`` checked."""

    @abstractmethod
    def _reload(self, conn: Connection, key: Key) -> Key:
        """``key`` as it is now in ``conn``."""

    @abstractmethod
    def _dual_control(self, ctx: RequestContext, operation: str, key: Key, summary: str,
                      **arguments: Any) -> None:
        """Raise ApprovalRequired unless ``operation`` on ``key`` may run now."""

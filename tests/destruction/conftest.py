"""In-process services over both backends, with the injected clock (tests/integration)."""

from tests.integration.conftest import node, sqlite_path

__all__ = ["node", "sqlite_path"]

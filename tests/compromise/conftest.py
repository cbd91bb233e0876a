"""In-process services over both backends, with the injected clock (tests/integration)."""

from tests.integration.conftest import node

__all__ = ["node"]

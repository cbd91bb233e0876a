"""In-process services over a real database with an injected clock (tests/integration),
and the approvals team (tests/approvals) for dual control."""

from tests.approvals.conftest import team  # noqa: F401
from tests.integration.conftest import node  # noqa: F401

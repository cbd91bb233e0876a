from tests.approvals.conftest import team  # noqa: F401

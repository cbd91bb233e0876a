"""The monitoring rows of the route table (rest/routes.py appends them): alerts and per-key
usage statistics. Built by a function, called by rest/routes.py once ``Route`` exists."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keykeeper.rest import alert_handlers as h
from keykeeper.rest import alert_schemas as s
from keykeeper.rest.schemas import Empty

if TYPE_CHECKING:
    from keykeeper.rest.routes import Route

__all__ = ["alert_routes"]


def alert_routes() -> tuple[Route, ...]:
    from keykeeper.rest.routes import Route

    return (
        Route("GET", "/v1/alerts", "alert.list", h.list_alerts, None, s.AlertList,
              "List alerts, newest first (filters: state open|acknowledged, rule, severity, "
              "since: RFC 3339 or a duration ago such as 1h, by last seen; paginated)",
              query=("state", "rule", "severity", "since", "page_size", "page_token")),
        Route("POST", "/v1/alerts/{id}/acknowledge", "alert.acknowledge", h.acknowledge,
              Empty, s.AlertOut, "Acknowledge an alert"),
        Route("GET", "/v1/keys/{key}/usage", "key.usage", h.key_usage, None, s.KeyUsage,
              "Usage statistics of a key: last use, counts per operation, principal and "
              "version (written every 5 s)"),
    )

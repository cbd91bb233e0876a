"""Principals, roles, grants and tokens as JSON-able dicts: the one shape the REST API
answers (rest/identity_schemas.py converts these) and an approved request records as its
result (service/approvals.py executors). Times are RFC 3339 UTC strings; TTLs seconds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keykeeper.authz.model import Grant, Principal, Role
from keykeeper.store.identity import TokenInfo

__all__ = ["grant_view", "principal_view", "rfc3339", "role_view", "token_state",
           "token_view"]


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def principal_view(p: Principal) -> dict[str, Any]:
    return {
        "name": p.name, "kind": p.kind, "roles": list(p.roles), "metadata": dict(p.metadata),
        "certificate_subjects": list(p.certificate_subjects), "rate_limit": p.rate_limit,
        "disabled": p.disabled, "created_by": p.created_by, "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    }


def role_view(r: Role) -> dict[str, Any]:
    return {"name": r.name, "description": r.description, "operations": list(r.operations),
            "builtin": r.builtin, "created_at": rfc3339(r.created_at),
            "updated_at": rfc3339(r.updated_at)}


def grant_view(g: Grant) -> dict[str, Any]:
    return {"id": g.id, "grantee": f"{g.grantee_kind}:{g.grantee}",
            "operations": list(g.operations), "namespace": g.scope.namespace,
            "key_pattern": g.scope.key_pattern, "labels": dict(g.scope.labels),
            "condition": str(g.condition) if g.condition is not None else None,
            "created_by": g.created_by, "created_at": rfc3339(g.created_at)}


def token_state(t: TokenInfo, now: datetime) -> str:
    """``revoked``, ``expired`` or ``active``."""
    if t.revoked_at is not None:
        return "revoked"
    if t.expires_at is not None and t.expires_at <= now:
        return "expired"
    return "active"


def token_view(t: TokenInfo, now: datetime) -> dict[str, Any]:
    """A token without its secret (never its hash either)."""
    return {"accessor": t.accessor, "principal": t.principal, "display_name": t.display_name,
            "created_by": t.created_by, "created_at": rfc3339(t.created_at),
            "expires_at": rfc3339(t.expires_at), "revoked_at": rfc3339(t.revoked_at),
            "ttl": t.ttl, "state": token_state(t, now)}


def principal_fingerprint(p: Principal) -> dict[str, Any]:
    """What approvers of a request about ``p`` relied on (JSON, kept in the request): a
    request runs, and its secret is handed over, only while this still holds."""
    return {"roles": list(p.roles), "metadata": dict(sorted(p.metadata.items())),
            "certificate_subjects": list(p.certificate_subjects),
            "created_at": p.created_at.isoformat() if p.created_at else None}

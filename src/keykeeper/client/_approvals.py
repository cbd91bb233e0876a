"""Dual-control and namespace routes of the SDK (``/v1/approvals``,
``/v1/policies/approval``, ``/v1/namespaces``).

A call under dual control raises :class:`keykeeper.errors.ApprovalRequired` when the
server answers 202; its ``approval_id`` names the pending request, which other
principals approve with :meth:`ApprovalsMixin.approve`. A token requested for another
principal is then fetched, once, by the requester with
:meth:`ApprovalsMixin.claim_approval`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from keykeeper.client._http import KEEP as _KEEP
from keykeeper.client._http import NULL as _NULL
from keykeeper.client._http import Http
from keykeeper.client._http import segment as _seg
from keykeeper.client.approval_models import (
    Approval,
    ApprovalPage,
    ApprovalPolicy,
    ApprovalRule,
    Namespace,
    NamespaceDeletion,
    _Namespaces,
)
from keykeeper.client.identity_models import NewToken

__all__ = ["ApprovalsMixin"]



class ApprovalsMixin:
    """Approval requests, the approval policy and namespaces; mixed into :class:`Client`."""

    _http: Http

    # -- approvals ------------------------------------------------------------------------
    def list_approvals(self, *, state: str | None = None, requester: str | None = None,
                       page_size: int | None = None,
                       page_token: str | None = None) -> ApprovalPage:
        """``GET /v1/approvals``: one page, newest first (only the caller's own requests
        unless it holds ``approval.list``)."""
        params = {"state": state, "requester": requester, "page_size": page_size,
                  "page_token": page_token}
        return self._http.call("GET", "/v1/approvals", ApprovalPage, params=params)

    def iter_approvals(self, *, state: str | None = None,
                       requester: str | None = None) -> Iterator[Approval]:
        """Every matching approval request, fetching pages as the iterator advances."""
        token: str | None = None
        while True:
            page = self.list_approvals(state=state, requester=requester, page_token=token)
            yield from page.approvals
            if not page.next_page_token:
                return
            token = page.next_page_token

    def get_approval(self, approval_id: str) -> Approval:
        """``GET /v1/approvals/{id}``."""
        return self._http.call("GET", "/v1/approvals/" + _seg(approval_id, "approval id"),
                               Approval)

    def approve(self, approval_id: str, comment: str | None = None) -> Approval:
        """``POST /v1/approvals/{id}/approve``. The M-th approval runs the operation (as its
        requester) before answering: see ``state``, ``result`` and ``error``. Raises
        PermissionDenied for the requester or a principal without an approver role,
        AlreadyExists for a second vote, FailedPrecondition once decided or expired."""
        path = "/v1/approvals/" + _seg(approval_id, "approval id") + "/approve"
        return self._http.call("POST", path, Approval, body={"comment": comment})

    def reject(self, approval_id: str, comment: str | None = None) -> Approval:
        """``POST /v1/approvals/{id}/reject``: one rejection rejects the request."""
        path = "/v1/approvals/" + _seg(approval_id, "approval id") + "/reject"
        return self._http.call("POST", path, Approval, body={"comment": comment})

    def claim_approval(self, approval_id: str) -> NewToken:
        """``POST /v1/approvals/{id}/claim``: the token an executed ``token.create``
        request made for another principal. Only the requester may claim it, and only
        once (the server then erases it): keep it safely. Raises PermissionDenied for
        anyone else, FailedPrecondition before execution or for a second claim."""
        path = "/v1/approvals/" + _seg(approval_id, "approval id") + "/claim"
        return self._http.call("POST", path, NewToken, body={})

    def get_approval_policy(self) -> ApprovalPolicy:
        """``GET /v1/policies/approval``."""
        return self._http.call("GET", "/v1/policies/approval", ApprovalPolicy)

    def set_approval_policy(self, rules: Iterable[ApprovalRule]) -> ApprovalPolicy:
        """``PUT /v1/policies/approval``: replace the policy (ApprovalRequired unless the
        policy puts ``approval_policy.update`` outside dual control or the caller is root)."""
        body = {"rules": [msgspec.to_builtins(r) for r in rules]}
        return self._http.call("PUT", "/v1/policies/approval", ApprovalPolicy, body=body)

    # -- namespaces -----------------------------------------------------------------------
    def create_namespace(self, name: str, *, description: str | None = None,
                         allow_legacy_rsa_2048: bool | None = None,
                         rate_limit: float | None = None,
                         rotation_period: int | str | None = None,
                         originator_usage_period: int | str | None = None,
                         recipient_usage_period: int | str | None = None) -> Namespace:
        """``POST /v1/namespaces``: a namespace with its own KEK. AlreadyExists if the name
        is taken, or was ever used (names of deleted namespaces are never reused).
        ``rotation_period`` (default of keys created here) and the usage periods (defaults
        of its keys' crypto-periods) are seconds or strings such as "90d"."""
        body = {"name": name, "description": description,
                "allow_legacy_rsa_2048": allow_legacy_rsa_2048, "rate_limit": rate_limit,
                "rotation_period": rotation_period,
                "originator_usage_period": originator_usage_period,
                "recipient_usage_period": recipient_usage_period}
        return self._http.call("POST", "/v1/namespaces", Namespace, body=body)

    def list_namespaces(self) -> list[Namespace]:
        """``GET /v1/namespaces`` (deleted namespaces are not listed)."""
        return self._http.call("GET", "/v1/namespaces", _Namespaces).namespaces

    def get_namespace(self, name: str) -> Namespace:
        """``GET /v1/namespaces/{name}``; NotFound for an unknown or deleted namespace."""
        return self._http.call("GET", "/v1/namespaces/" + _seg(name, "namespace"), Namespace)

    def update_namespace(self, name: str, *, description: str | None = None,
                         allow_legacy_rsa_2048: bool | None = None,
                         rate_limit: float | None = _KEEP,
                         rotation_period: int | str | None = _KEEP,
                         originator_usage_period: int | str | None = _KEEP,
                         recipient_usage_period: int | str | None = _KEEP) -> Namespace:
        """``PATCH /v1/namespaces/{name}``; ``rate_limit=None`` removes the limit, leaving
        it out keeps it; so too the lifecycle defaults (seconds or "90d")."""
        body: dict[str, Any] = {"description": description,
                                "allow_legacy_rsa_2048": allow_legacy_rsa_2048}
        for field, value in (("rate_limit", rate_limit), ("rotation_period", rotation_period),
                             ("originator_usage_period", originator_usage_period),
                             ("recipient_usage_period", recipient_usage_period)):
            if value is not _KEEP:
                body[field] = _NULL if value is None else value
        return self._http.call("PATCH", "/v1/namespaces/" + _seg(name, "namespace"),
                               Namespace, body=body)

    def delete_namespace(self, name: str) -> NamespaceDeletion:
        """``DELETE /v1/namespaces/{name}``: crypto-erase the namespace's KEK and every key
        in it, irreversibly. Raises ApprovalRequired (dual control) unless the caller is
        root; FailedPrecondition for ``default``."""
        return self._http.call("DELETE", "/v1/namespaces/" + _seg(name, "namespace"),
                               NamespaceDeletion)

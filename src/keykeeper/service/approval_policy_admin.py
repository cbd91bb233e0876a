"""The approval policy as the approvals service reads and changes it (a mixin of
:class:`~keykeeper.service.approvals.Approvals`): which operations wait for how many
approvals from which roles, validated so that no rule is silently ignored and none can
leave the store without enough approvers."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from keykeeper.authz.operations import matches
from keykeeper.errors import FailedPrecondition, Internal, InvalidArgument
from keykeeper.service.approval_policy import (
    DEFAULT_OPERATIONS,
    DEFAULT_POLICY,
    POLICY_CONFIG,
    ApprovalPolicy,
    ApprovalRule,
    eligible_approvers,
    shortfall,
)
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.identity_base import role_operations, root_token_active

__all__ = ["ApprovalPolicyAdmin"]

log = logging.getLogger("keykeeper.approvals")


class ApprovalPolicyAdmin(ABC):
    """Needs, from the approvals service it is mixed into: the store, the authorizer, the
    operations that have an executor, and the dual-control gate."""

    _d: Deps
    _authz: Authorizer
    # cached_policy(): (time.monotonic() of the read, policy); the epoch moves on a change.
    _policy_cache: tuple[float, ApprovalPolicy] | None = None
    _policy_epoch = 0
    _policy_lock = threading.Lock()

    @abstractmethod
    def registered(self) -> frozenset[str]: ...

    @abstractmethod
    def gate(self, ctx: RequestContext, operation: str, arguments: dict[str, Any], *,
             summary: str, namespace: str | None = None, key_id: str | None = None) -> None: ...

    def _check_gateable(self, operations: tuple[str, ...]) -> None:
        """Refuse a rule naming an operation that never waits for approval (a rule that
        would be silently ignored): each name must be an operation that can be held for
        approval, each pattern must cover at least one. The default policy's operations
        count too: those of features still to come (export, restore, audit configuration)
        wait for approval the day they exist."""
        gateable = self.registered() | frozenset(DEFAULT_OPERATIONS)
        for op in operations:
            if not any(matches(op, g) for g in gateable):
                raise InvalidArgument(
                    f"operation '{op}' cannot be put under dual control; operations that "
                    f"can: {', '.join(sorted(gateable))}")

    # -- policy ---------------------------------------------------------------------------
    def policy(self) -> ApprovalPolicy:
        """The policy in force (read from the store: a change made on any node applies to
        the next gated call everywhere)."""
        with self._d.reading() as conn:
            raw = self._d.system.get_config(conn, POLICY_CONFIG)
        if raw is None:
            return DEFAULT_POLICY
        try:
            return ApprovalPolicy.from_json(raw)
        except InvalidArgument:
            log.exception("stored approval policy is invalid")
            raise Internal("the stored approval policy is invalid") from None

    def rule_for(self, operation: str) -> ApprovalRule | None:
        return self.policy().rule_for(operation)

    def cached_policy(self, ttl: float = 1.0) -> ApprovalPolicy:
        """:meth:`policy`, read from the store at most once per ``ttl`` seconds, as the
        authorizer reads roles and grants: a change made on this node applies at once,
        one made on another node within ``ttl``. For checks on a hot path that cannot
        wait for approvals anyway (KMIP Get refusing key material under dual control)."""
        cached = self._policy_cache
        if cached is not None and time.monotonic() - cached[0] < ttl:
            return cached[1]
        epoch = self._policy_epoch
        policy = self.policy()
        with self._policy_lock:
            if epoch == self._policy_epoch:
                self._policy_cache = (time.monotonic(), policy)
        return policy

    def _policy_changed(self) -> None:
        with self._policy_lock:
            self._policy_epoch += 1
            self._policy_cache = None

    def get_policy(self, ctx: RequestContext) -> ApprovalPolicy:
        self._authz.require(ctx, "approval_policy.get")
        return self.policy()

    def set_policy(self, ctx: RequestContext, value: Mapping[str, Any]) -> ApprovalPolicy:
        """Replace the policy (itself under dual control by default). InvalidArgument for a
        malformed policy or an approver role that does not exist."""
        self._authz.require(ctx, "approval_policy.update")
        policy = ApprovalPolicy.from_json(value)
        with self._d.reading() as conn:
            known = {r.name for r in self._d.identity.list_roles(conn)}
        for rule in policy.rules:
            missing = [r for r in rule.approver_roles if r not in known]
            if missing:
                raise InvalidArgument(f"approver role '{missing[0]}' does not exist")
            self._check_gateable(rule.operations)
        with self._d.reading() as conn:
            self._check_satisfiable(conn, policy)  # before filing an approval
        self.gate(ctx, "approval_policy.update", {"policy": policy.to_json()},
                  summary=f"replace the approval policy ({len(policy.rules)} rule(s))")
        try:
            with self._d.transaction() as conn:
                self._check_satisfiable(conn, policy)
                self._d.system.set_config(conn, POLICY_CONFIG, policy.to_json())
        finally:
            self._policy_changed()
        return policy

    def _check_satisfiable(self, conn: Any, policy: ApprovalPolicy) -> None:
        """Once no root token is active, every rule must keep at least M principals able
        to approve: a rule without them could never run anything again (not even the
        policy change that would fix it, if it covers approval_policy.update)."""
        if root_token_active(self._d, conn):
            return
        principals = self._d.identity.list_principals(conn)
        ops = role_operations(self._d, conn)
        for rule in policy.rules:
            have = len(eligible_approvers(rule, principals, ops))
            if have < rule.required:
                raise FailedPrecondition(f"{shortfall(rule, have)}; no root token is "
                                         "active, so appoint them before this policy")

    def execute_policy_update(self, ctx: RequestContext,
                              arguments: dict[str, Any]) -> Mapping[str, Any]:
        """Executor of ``approval_policy.update``."""
        return self.set_policy(ctx, arguments["policy"]).to_json()


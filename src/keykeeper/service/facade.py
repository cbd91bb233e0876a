"""The service layer as one object: every interface calls this, and only this."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from keykeeper.monitor.metrics import Metrics
from keykeeper.service.alerts import AlertService, AlertSettings
from keykeeper.service.approvals import Approvals
from keykeeper.service.audit import Auditor
from keykeeper.service.auth import TokenAuthenticator
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.backup import Backups, build_backups
from keykeeper.service.bulk_revoke import BulkRevoke
from keykeeper.service.compromise import CompromiseService
from keykeeper.service.deps import Deps
from keykeeper.service.destruction import Destruction
from keykeeper.service.identity import IdentityService
from keykeeper.service.keys import KeyAdmin
from keykeeper.service.kmip_attributes import KmipAttributeStore
from keykeeper.service.kmip_keys import KmipKeys
from keykeeper.service.lifecycle_jobs import SchedulerControl
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.monitoring import Monitoring, MonitorSettings
from keykeeper.service.namespaces import NamespaceAdmin
from keykeeper.service.operations import Crypto
from keykeeper.service.ratelimit import RateLimiter
from keykeeper.service.raw_crypto import RawCrypto
from keykeeper.service.system import SystemService
from keykeeper.service.tokens import MAX_TTL as MAX_TOKEN_TTL
from keykeeper.service.usage import UsageCounter

__all__ = ["Background", "Services", "build_services"]


class Background(Protocol):
    """A per-node background task (usage counter flush, monitoring, ...), started when the
    server starts and stopped, flushing what it holds, when it stops."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class Services:
    deps: Deps
    system: SystemService
    auth: TokenAuthenticator
    keys: KeyAdmin
    crypto: Crypto
    audit: Auditor
    lookup: KeyLookup
    authz: Authorizer
    limits: RateLimiter
    approvals: Approvals
    namespaces: NamespaceAdmin
    identity: IdentityService
    # Compromise response and destruction (service/compromise.py, bulk_revoke.py,
    # destruction.py); ``destruction`` is ``keys.destruction``.
    compromise: CompromiseService
    bulk_revoke: BulkRevoke
    destruction: Destruction
    # Alerts and monitoring (service/alerts.py, service/monitoring.py): both are also in
    # ``background`` (the webhook sender; the anomaly rules and the usage flush).
    alerts: AlertService
    monitoring: Monitoring
    # Per-node background tasks; the server starts them after start-up and stops them, in
    # reverse order, before the audit trail closes (config.py).
    background: list[Background] = field(default_factory=list)
    usage: UsageCounter | None = None  # this node's protect-count reservations
    # This node's lifecycle scheduler (service/lifecycle_jobs.py): its node id and role;
    # config.py attaches the scheduler when it runs one.
    scheduling: SchedulerControl = field(default_factory=SchedulerControl)
    # Backup create, verify and restore (service/backup*.py; issue 7).
    backups: Backups | None = None
    # KMIP's key operations in their own shape (service/kmip_keys.py; issue 5).
    kmip_keys: KmipKeys | None = None
    # KMIP attributes kept in the keys' "kmip.*" labels (service/kmip_attributes.py).
    kmip_attributes: KmipAttributeStore | None = None
    # KMIP's raw cryptographic modes (service/raw_crypto.py; issue 5).
    raw_crypto: RawCrypto | None = None

    def start_background(self) -> None:
        for task in self.background:
            task.start()

    def stop_background(self) -> None:
        for task in reversed(self.background):
            task.stop()


def build_services(deps: Deps, auditor: Auditor, *, metadata_ttl: float = 1.0,
                   rate_limit: float | None = None,
                   max_token_ttl: int = MAX_TOKEN_TTL, metrics: Metrics | None = None,
                   monitor: MonitorSettings | None = None) -> Services:
    lookup = KeyLookup(deps, ttl=metadata_ttl)
    authz = Authorizer(deps, ttl=metadata_ttl)
    limits = RateLimiter(deps, rate_limit, settings_ttl=metadata_ttl)
    approvals = Approvals(deps, authz)
    namespaces = NamespaceAdmin(deps, lookup, authz, approvals)
    approvals.register("namespace.delete", namespaces.execute_delete)
    approvals.register("approval_policy.update", approvals.execute_policy_update)
    auth = TokenAuthenticator(deps)
    identity = IdentityService(deps, authz, auth, gate=approvals.gate,
                               max_token_ttl=max_token_ttl)
    identity.register_executors(approvals.register)
    approvals.register_claim_check("token.create", identity.tokens.check_claimable)
    keys = KeyAdmin(deps, lookup, authz, limits)
    keys.gate = approvals.gate
    keys.register_executors(approvals.register)
    compromise = CompromiseService(deps, lookup, authz, gate=approvals.gate,
                                   search=auditor.search)
    compromise.register_executors(approvals.register)
    bulk_revoke = BulkRevoke(deps, keys, authz, gate=approvals.gate)
    bulk_revoke.register_executors(approvals.register)
    usage = UsageCounter(deps, lookup)  # per-version protect counts (service/usage.py)
    monitor = monitor or MonitorSettings()
    alerts = AlertService(deps, authz, auditor, AlertSettings(
        dedup_seconds=monitor.dedup_seconds, webhook=monitor.webhook,
        node=auditor.chain.id), metrics)
    monitoring = Monitoring(deps, lookup, authz, limits, alerts, monitor, metrics)
    auditor.listeners.append(monitoring.listen)
    crypto = Crypto(lookup, authz, limits, clock=deps.clock, usage=usage)
    services = Services(
        deps=deps, system=SystemService(deps, on_root_change=lookup.root_changed),
        auth=auth,
        keys=keys, crypto=crypto,
        audit=auditor, lookup=lookup, authz=authz, limits=limits,
        approvals=approvals, namespaces=namespaces, identity=identity,
        compromise=compromise, bulk_revoke=bulk_revoke, destruction=keys.destruction,
        alerts=alerts, monitoring=monitoring, usage=usage,
        backups=build_backups(deps, authz, auditor, approvals, lookup),
        kmip_attributes=KmipAttributeStore(deps, lookup, authz),
        kmip_keys=KmipKeys(deps, lookup, authz, keys, compromise, approvals, usage),
        raw_crypto=RawCrypto(crypto),
    )
    services.background.extend((alerts, monitoring))  # stopped in reverse: monitoring first
    services.background.append(usage)
    return services

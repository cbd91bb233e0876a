"""The composition root: builds the store, custody, audit sinks, services and the app.

Nothing else wires objects together. Settings come from arguments of
``keykeeper server`` or from the environment (which is how uvicorn worker
processes receive them):

=================================  ==========================================================
``KEYKEEPER_DATA_DIR``             data directory (SQLite file, audit log); default ``./data``
``KEYKEEPER_DATABASE_URL``         ``postgresql+psycopg://...`` to use PostgreSQL
``KEYKEEPER_AUDIT_FILE``           audit log path; default ``<data dir>/audit.log``
``KEYKEEPER_AUDIT_SINKS``          audit sinks and policies (audit/sinkspec.py); default
                                   ``file:required,database:best_effort``
``KEYKEEPER_AUDIT_TIMEOUT``        seconds a request waits for its required sinks (2)
``KEYKEEPER_AUDIT_MAX_BYTES``      rotate the audit file past this size (100 MiB; 0: never)
``KEYKEEPER_AUDIT_CHECKPOINT_SECONDS`` seconds between audit checkpoints (60)
``KEYKEEPER_NODE_ID``              this node's audit chain id; default the host name
``KEYKEEPER_UNSEAL_PASSPHRASE_FILE`` unseal at start with the passphrase in this file
``KEYKEEPER_METADATA_TTL``         seconds key metadata is cached (default 1)
``KEYKEEPER_RATE_LIMIT``           requests per second per principal (default 0: no limit)
``KEYKEEPER_MAX_TOKEN_TTL``        longest token lifetime, seconds or e.g. ``90d`` (``365d``)
``KEYKEEPER_SCHEDULER``            ``on`` (default) or ``off``: run the lifecycle scheduler
                                   (one leader per cluster; docs/scheduler.md)
``KEYKEEPER_SCHEDULER_INTERVAL``   seconds between runs of each lifecycle job (10)
``KEYKEEPER_EXPIRY_NOTICE``        crypto-period expiry notice window, e.g. ``30d`` (30 days)
``KEYKEEPER_BACKUP_DIR``           scheduled backups into this directory (unset: none; the
                                   scheduler's ``backup`` job, service/backup_schedule.py)
``KEYKEEPER_BACKUP_INTERVAL``      seconds (or e.g. ``1d``) between scheduled backups (1 day)
``KEYKEEPER_BACKUP_RETAIN``        scheduled archives kept, the oldest deleted first (7)
``KEYKEEPER_BACKUP_CUSTODIANS``    custodian public key PEM files, comma-separated (required
                                   with ``KEYKEEPER_BACKUP_DIR``)
``KEYKEEPER_BACKUP_THRESHOLD``     custodians needed to open a scheduled archive (2)
``KEYKEEPER_BACKUP_MIN_QUORUM``    the fewest people (share or custodian threshold) any
                                   archive may be opened by, for REST, CLI and scheduled
                                   backups (2; 1 lets one person open an archive alone)
``KEYKEEPER_ALERT_RULES``          JSON file tuning the anomaly rules (docs/monitoring.md)
``KEYKEEPER_ALERT_WEBHOOK``        http(s) URL that receives each new alert as JSON
``KEYKEEPER_ALERT_DEDUP``          seconds an alert absorbs repeats of itself (600)
``KEYKEEPER_METRICS_MAX_KEYS``     distinct keys labelled in operation metrics (1000)
``KEYKEEPER_METRICS_UNAUTHENTICATED`` ``on``: serve /metrics without a token (default
                                   ``off``: a token allowed ``metrics.read``)
``KEYKEEPER_USAGE_FLUSH_SECONDS``  seconds between writes of key usage statistics (5)
``KEYKEEPER_PKCS11_LIBRARY``       PKCS#11 module path (default SoftHSM2's)
``KEYKEEPER_PKCS11_TOKEN_LABEL``   the token by label (or ``..._TOKEN_SERIAL`` by serial)
``KEYKEEPER_PKCS11_PIN_FILE``      file holding the user PIN (or ``..._PIN``, the PIN itself)
``KEYKEEPER_TLS_CERT_FILE``        REST listener certificate (PEM, chain leaf first; docs/tls.md)
``KEYKEEPER_TLS_KEY_FILE``         its private key (PEM, unencrypted)
``KEYKEEPER_TLS_CLIENT_CA_FILE``   CA file that client certificates must chain to
``KEYKEEPER_TLS_CLIENT_AUTH``      ``none`` | ``optional`` | ``required`` (``optional`` when a
                                   client CA file is given, else ``none``)
``KEYKEEPER_INSECURE_NO_TLS``      ``on``: allow plain HTTP on a non-loopback address
``KEYKEEPER_KMIP_LISTEN``          ``HOST:PORT`` of the KMIP listener (mutual TLS, e.g. port
                                   5696; unset: none; needs the TLS settings and a client CA)
``KEYKEEPER_KMIP_TLS_CERT_FILE``   the KMIP listener's own certificate, ``..._KEY_FILE`` its
                                   key, ``..._CLIENT_CA_FILE`` its client CA (each unset: the
                                   REST listener's; KMIP may run beside plain-HTTP REST)
``KEYKEEPER_KMIP_NAMESPACE``       namespace of objects created over KMIP (``default``)
``KEYKEEPER_KMIP_EXTRACTABLE_DEFAULT`` ``true``: KMIP objects are extractable unless the
                                   request says otherwise (default ``false``); docs/kmip.md
``KEYKEEPER_KMIP_LEASE_TIME``      the Lease Time attribute of KMIP objects, seconds (3600;
                                   0: none); docs/kmip.md
``KEYKEEPER_KMIP_MAX_MESSAGE``     largest KMIP message, bytes (1 MiB)
``KEYKEEPER_KMIP_IDLE_TIMEOUT``    seconds a KMIP connection may stay idle (300)
=================================  ==========================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from keykeeper.custody.hsm.token import HsmConfig, Token
from keykeeper.custody.keyring import Custody
from keykeeper.domain.durations import parse_duration
from keykeeper.errors import InvalidArgument
from keykeeper.kmip.call import KmipSettings
from keykeeper.kmip.server import (
    KmipListener,
    ListenerSettings,
    kmip_settings_from_env,
    kmip_tls_context,
    kmip_tls_from_env,
    listener_from_env,
)
from keykeeper.monitor.metrics import Metrics
from keykeeper.rest.app import create_app
from keykeeper.service.audit_setup import AuditSettings, build_auditor
from keykeeper.service.backup_export import (
    DEFAULT_MIN_QUORUM,
    MAX_MIN_QUORUM,
    MIN_QUORUM_SETTING,
)
from keykeeper.service.backup_schedule import BackupSchedule, ScheduledBackups
from keykeeper.service.deps import Deps, utcnow
from keykeeper.service.facade import Services, build_services
from keykeeper.service.lifecycle_jobs import build_scheduler
from keykeeper.service.monitoring import MonitorSettings
from keykeeper.store.engine import make_engine, sqlite_url
from keykeeper.store.usage import UsageRepository
from keykeeper.tls import TlsSettings

__all__ = ["Settings", "app_factory", "build", "run_server"]

log = logging.getLogger("keykeeper")
NAMESPACE_SWEEP_SECONDS = 1.0
AUTO_UNSEAL_RETRY_SECONDS = 5.0  # pkcs11 seal: retry a failed auto-unseal this often


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    audit_file: Path
    unseal_passphrase_file: Path | None = None
    metadata_ttl: float = 1.0
    rate_limit: float = 0.0
    max_token_ttl: int = 365 * 86400
    audit_sinks: str = "file:required,database:best_effort"
    audit_timeout: float = 2.0
    audit_max_bytes: int = 100 * 1024 * 1024
    audit_checkpoint_seconds: float = 60.0
    node_id: str = ""
    metrics_unauthenticated: bool = False
    scheduler: bool = True
    scheduler_interval: float = 10.0
    expiry_notice: int = 30 * 86400
    tls: TlsSettings | None = None  # KEYKEEPER_TLS_* (docs/tls.md); None: plain HTTP
    backup_min_quorum: int = DEFAULT_MIN_QUORUM  # KEYKEEPER_BACKUP_MIN_QUORUM
    kmip_listen: ListenerSettings | None = None  # KEYKEEPER_KMIP_LISTEN (docs/kmip.md)
    kmip: KmipSettings = field(default_factory=KmipSettings)  # KEYKEEPER_KMIP_NAMESPACE, ...
    kmip_tls: TlsSettings | None = None  # KEYKEEPER_KMIP_TLS_*; None: the REST listener's

    @property
    def kmip_listener_tls(self) -> TlsSettings | None:
        """The KMIP listener's TLS settings: its own, else the REST listener's."""
        return self.kmip_tls if self.kmip_tls is not None else self.tls

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("KEYKEEPER_DATA_DIR", "data")).resolve()
        unseal = os.environ.get("KEYKEEPER_UNSEAL_PASSPHRASE_FILE")
        tls = TlsSettings.from_values(os.environ.get("KEYKEEPER_TLS_CERT_FILE"),
                                      os.environ.get("KEYKEEPER_TLS_KEY_FILE"),
                                      os.environ.get("KEYKEEPER_TLS_CLIENT_CA_FILE"),
                                      os.environ.get("KEYKEEPER_TLS_CLIENT_AUTH"))
        return cls(
            data_dir=data_dir,
            database_url=os.environ.get("KEYKEEPER_DATABASE_URL") or sqlite_url(data_dir),
            audit_file=Path(os.environ.get("KEYKEEPER_AUDIT_FILE", data_dir / "audit.log")),
            unseal_passphrase_file=Path(unseal) if unseal else None,
            metadata_ttl=float(os.environ.get("KEYKEEPER_METADATA_TTL", "1.0")),
            rate_limit=float(os.environ.get("KEYKEEPER_RATE_LIMIT", "0") or 0),
            max_token_ttl=parse_duration(os.environ.get("KEYKEEPER_MAX_TOKEN_TTL") or "365d",
                                         what="KEYKEEPER_MAX_TOKEN_TTL"),
            audit_sinks=os.environ.get("KEYKEEPER_AUDIT_SINKS")
            or "file:required,database:best_effort",
            audit_timeout=float(os.environ.get("KEYKEEPER_AUDIT_TIMEOUT", "2") or 2),
            audit_max_bytes=int(os.environ.get("KEYKEEPER_AUDIT_MAX_BYTES", str(100 << 20))),
            audit_checkpoint_seconds=float(
                os.environ.get("KEYKEEPER_AUDIT_CHECKPOINT_SECONDS", "60") or 60),
            node_id=os.environ.get("KEYKEEPER_NODE_ID", ""),
            metrics_unauthenticated=_on_off(
                os.environ.get("KEYKEEPER_METRICS_UNAUTHENTICATED") or "off",
                "KEYKEEPER_METRICS_UNAUTHENTICATED"),
            scheduler=_on_off(os.environ.get("KEYKEEPER_SCHEDULER") or "on",
                              "KEYKEEPER_SCHEDULER"),
            scheduler_interval=_seconds(os.environ.get("KEYKEEPER_SCHEDULER_INTERVAL") or "10",
                                        "KEYKEEPER_SCHEDULER_INTERVAL"),
            expiry_notice=parse_duration(os.environ.get("KEYKEEPER_EXPIRY_NOTICE") or "30d",
                                         what="KEYKEEPER_EXPIRY_NOTICE"),
            tls=tls,
            backup_min_quorum=_min_quorum(os.environ.get(MIN_QUORUM_SETTING) or ""),
            kmip_listen=listener_from_env(os.environ),
            kmip=kmip_settings_from_env(os.environ),
            kmip_tls=kmip_tls_from_env(os.environ, tls),
        )

    @property
    def audit(self) -> AuditSettings:
        return AuditSettings(file=self.audit_file, sinks=self.audit_sinks,
                             node_id=self.node_id, timeout=self.audit_timeout,
                             max_bytes=self.audit_max_bytes,
                             checkpoint_seconds=self.audit_checkpoint_seconds)


def _seconds(value: str, what: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 86400:
        raise InvalidArgument(f"{what} must be a number of seconds above 0, got '{value}'")
    return seconds


def _min_quorum(value: str) -> int:
    """``KEYKEEPER_BACKUP_MIN_QUORUM``: 1..MAX_MIN_QUORUM people (default 2)."""
    text = value.strip() or str(DEFAULT_MIN_QUORUM)
    if not text.isdigit() or not 1 <= int(text) <= MAX_MIN_QUORUM:
        raise InvalidArgument(f"{MIN_QUORUM_SETTING} must be a number of people "
                              f"1..{MAX_MIN_QUORUM}, got '{value[:32]}'")
    return int(text)


def backup_schedule_settings(settings: Settings) -> BackupSchedule | None:
    """``KEYKEEPER_BACKUP_*`` checked (service/backup_schedule.py) against the quorum
    policy: None when scheduled backups are off. InvalidArgument naming the setting; the
    server checks them before it says it is listening."""
    schedule = BackupSchedule.from_env(os.environ)
    if schedule is not None and schedule.threshold < settings.backup_min_quorum:
        raise InvalidArgument(f"KEYKEEPER_BACKUP_THRESHOLD ({schedule.threshold}) is "
                              f"below {MIN_QUORUM_SETTING} ({settings.backup_min_quorum}): "
                              "scheduled archives would be refused")
    return schedule


def _on_off(value: str, what: str) -> bool:
    if value.lower() not in ("on", "off"):
        raise InvalidArgument(f"{what} must be 'on' or 'off', got '{value}'")
    return value.lower() == "on"


def build(settings: Settings, *, sweeper: bool = False) -> tuple[ASGIApp, Services]:
    """Build every object of one server process from ``settings``.

    ``sweeper`` is set for a server process (its lifespan starts the background tasks):
    with ``settings.scheduler`` it adds the leader-elected lifecycle scheduler (rotation,
    crypto-periods, scheduled destruction, approval expiry; docs/scheduler.md).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(settings.database_url)
    hsm_config = HsmConfig.from_env()  # KEYKEEPER_PKCS11_* (custody/hsm/token.py)
    hsm = Token(hsm_config) if hsm_config is not None else None
    deps = Deps(engine=engine, custody=Custody(hsm=hsm), clock=utcnow)

    def key_counts() -> dict[tuple[str, str, str], int]:
        with deps.reading() as conn:  # keykeeper_keys{state, algorithm, namespace}
            return UsageRepository().key_counts(conn)

    monitor = MonitorSettings.from_env()  # KEYKEEPER_ALERT_* (docs/monitoring.md)
    metrics = Metrics(key_counts, lambda: deps.custody.sealed,
                      max_keys=monitor.metrics_max_keys)
    auditor = build_auditor(settings.audit, deps, clock=utcnow, on_alert=metrics.audit_alert)
    services = build_services(deps, auditor, metadata_ttl=settings.metadata_ttl,
                              rate_limit=settings.rate_limit,
                              max_token_ttl=settings.max_token_ttl,
                              metrics=metrics, monitor=monitor)
    services.scheduling.node_id = settings.node_id or services.scheduling.node_id
    # KEYKEEPER_BACKUP_* (service/backup_schedule.py): checked even where no scheduler runs.
    backup_schedule = backup_schedule_settings(settings)
    if services.backups is not None:
        services.backups.create.min_quorum = settings.backup_min_quorum
    if sweeper and settings.scheduler:
        extra = ([ScheduledBackups(services.backups, backup_schedule,
                                   auditor if auditor.enabled else None).job()]
                 if backup_schedule is not None and services.backups is not None else [])
        scheduler = build_scheduler(
            deps, services.lookup, services.approvals, auditor,
            data_dir=settings.data_dir, node_id=services.scheduling.node_id,
            interval_seconds=settings.scheduler_interval,
            destroy_due=services.destruction.destroy_due,
            notify=services.alerts.raise_alert, notice_seconds=settings.expiry_notice,
            on_run=metrics.scheduler_run, on_leader=metrics.set_leader, extra_jobs=extra)
        services.scheduling.scheduler = scheduler
        services.background.append(scheduler)
    if sweeper and settings.kmip_listen is not None:
        kmip_context = kmip_tls_context(settings.kmip_listener_tls)
        services.background.append(KmipListener(services, kmip_context,
                                                settings.kmip_listen, settings.kmip,
                                                observe=metrics.observe))
    app = create_app(services, metrics, lifespan=_lifespan(services) if sweeper else None,
                     metrics_unauthenticated=settings.metrics_unauthenticated,
                     kmip=settings.kmip)
    if settings.unseal_passphrase_file is not None:
        passphrase = settings.unseal_passphrase_file.read_text().strip()
        services.system.unseal(passphrase)
    # The pkcs11 seal unseals itself (docs/seal.md); a token that cannot be used leaves the
    # server sealed with the reason in health and the log, and the lifespan retries.
    services.system.auto_unseal()
    return app, services


def _lifespan(services: Services) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async def forget_deleted_namespaces() -> None:
            # Another node deleted a namespace: drop its KEK and key handles here too.
            while True:
                try:
                    await run_in_threadpool(services.namespaces.forget_deleted)
                except Exception:
                    log.exception("namespace cache sweep failed")
                await asyncio.sleep(NAMESPACE_SWEEP_SECONDS)

        async def retry_auto_unseal() -> None:
            while True:
                await asyncio.sleep(AUTO_UNSEAL_RETRY_SECONDS)
                if services.system.needs_auto_unseal():
                    try:  # not after a refused PIN (service/system.py retry_auto_unseal)
                        await run_in_threadpool(services.system.retry_auto_unseal)
                    except Exception:
                        log.exception("pkcs11 auto-unseal retry failed")

        namespace_task = asyncio.create_task(forget_deleted_namespaces())
        unseal_task = asyncio.create_task(retry_auto_unseal())
        # Per-node background tasks, the lifecycle scheduler among them (service/facade.py).
        await run_in_threadpool(services.start_background)
        try:
            yield
        finally:
            namespace_task.cancel()
            unseal_task.cancel()
            await run_in_threadpool(services.stop_background)
            # Sign the audit chain head and flush the sinks, then drop the root key.
            await run_in_threadpool(services.audit.close)
            services.deps.custody.seal()

    return lifespan


def app_factory() -> ASGIApp:
    """The ASGI app of one uvicorn worker, configured from the environment."""
    return build(Settings.from_env(), sweeper=True)[0]


# run_server builds on everything above (keykeeper/config/startup.py imports it from here).
from keykeeper.config.startup import run_server  # noqa: E402

"""A store of many real keys, fast: for the disaster-recovery drill (test_drill.py) and the
backup benchmark (bench/backup_throughput.py).

Creating 10,000 keys one service call at a time takes ten minutes on a 2-core machine
(authorization, audit, one transaction each), which is not what the drill measures. The
seeder makes the same rows the service makes (service/keys.py ``create`` and ``rotate``):
fresh material from crypto/ (``versions.generate``), wrapped under the namespace KEK by
``Custody.wrap_material`` with the same associated data, a ``create`` and a ``rotate``
event per version, written with batched inserts, ``BATCH`` keys per transaction.

Golden ciphertexts are made with the version's own material in the service's ciphertext
format (domain/ciphertext.py: header, AAD, AEAD of crypto/): if the seeder got anything
wrong, the service would refuse them after the restore, so they cannot pass by
accident. A sample of goldens and of signatures is also made through the service itself.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pybase64 import b64encode_as_string
from sqlalchemy import insert

from keykeeper.crypto.handles import load_private
from keykeeper.crypto.registry import get_spec
from keykeeper.domain.ciphertext import associated_data, header
from keykeeper.domain.keys import new_key_id
from keykeeper.service.facade import Services
from keykeeper.service.versions import generate
from keykeeper.store import schema

__all__ = ["FAMILIES", "RARE", "Golden", "Seeded", "seed"]

BATCH = 500
NAMESPACES = ("default", "payments", "identity", "archive")
# Cheap families, by weight out of 100: most keys are symmetric, as in practice.
FAMILIES: tuple[tuple[str, int], ...] = (
    ("AES_256_GCM", 58), ("AES_128_GCM", 8), ("CHACHA20_POLY1305", 7), ("HMAC_SHA256", 8),
    ("ED25519", 8), ("ECDSA_P256_SHA256", 6), ("AES_256_KWP", 3), ("ECDSA_P384_SHA384", 2))
# Costly to generate: a few keys each, so that every family travels through the archive.
RARE = ("RSA_PSS_3072_SHA256", "RSA_OAEP_3072_SHA256", "ML_DSA_44", "ML_KEM_768")
RARE_EACH = 2
SYMMETRIC_ENCRYPT = frozenset(("AES_256_GCM", "AES_128_GCM", "CHACHA20_POLY1305"))


@dataclass(frozen=True)
class Golden:
    key_id: str
    version: int
    plaintext: bytes
    ciphertext: str
    context: dict[str, str] | None = None


@dataclass
class Seeded:
    keys: int = 0
    versions: int = 0
    by_algorithm: dict[str, int] = field(default_factory=dict)
    goldens: list[Golden] = field(default_factory=list)          # every symmetric version
    service_goldens: list[Golden] = field(default_factory=list)  # made by Crypto.encrypt
    signatures: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # key, msg, sig
    states: dict[str, str] = field(default_factory=dict)        # key id -> state
    seconds: float = 0.0


def _algorithms(n: int) -> list[str]:
    rare = [a for a in RARE for _ in range(RARE_EACH)][: max(0, n // 100)]
    wheel = [name for name, weight in FAMILIES for _ in range(weight)]
    out = list(rare)
    for i in itertools.count():
        if len(out) >= n:
            break
        out.append(wheel[(i * 37) % len(wheel)])  # 37 is prime to 100: a fair mix
    return out


def seed(services: Services, n: int, *, golden_sample: int = 100,
         signature_sample: int = 60) -> Seeded:
    """Write ``n`` keys (1 to 3 versions each; every 200th suspended; labels on every 7th)
    into the four NAMESPACES of ``services``' store, through the store's tables in
    transactions of BATCH keys. Returns the goldens and what was made."""
    import time
    started = time.monotonic()
    deps, ctx = services.deps, _ctx()
    for name in NAMESPACES[1:]:
        services.namespaces.create(ctx, name, description=f"drill {name}")
    keks: dict[str, bytes] = {}
    with deps.reading() as conn:
        for name in NAMESPACES:
            ns = deps.system.get_namespace(conn, name)
            assert ns is not None
            keks[name] = ns.wrapped_kek
    out = Seeded()
    now = deps.clock()
    algorithms = _algorithms(n)
    for start in range(0, n, BATCH):
        rows: dict[str, list[dict[str, Any]]] = {"keys": [], "key_versions": [],
                                                 "key_events": [], "key_labels": []}
        for i in range(start, min(n, start + BATCH)):
            _one(deps, out, rows, i, algorithms[i], keks, now)
        with deps.transaction() as conn:
            for table in ("keys", "key_labels", "key_versions", "key_events"):
                if rows[table]:
                    conn.execute(insert(schema.metadata.tables[table]), rows[table])
    _through_service(services, out, golden_sample, signature_sample)
    out.seconds = time.monotonic() - started
    return out


def _ctx() -> Any:
    from keykeeper.service.context import Principal, RequestContext
    return RequestContext(interface="test", principal=Principal("root"))


def _one(deps: Any, out: Seeded, rows: dict[str, list[dict[str, Any]]], i: int,
         algorithm: str, keks: dict[str, bytes], now: Any) -> None:
    spec = get_spec(algorithm)
    key_id = new_key_id()
    namespace = NAMESPACES[i % len(NAMESPACES)]
    count = 1 + i % 3
    state = "suspended" if i % 200 == 3 else "active"
    created = now - timedelta(days=count)
    rows["keys"].append({
        "id": key_id, "namespace": namespace, "name": f"k{i:06d}",
        "purpose": str(spec.purpose), "algorithm": spec.name, "state": state,
        "primary_version": count, "description": "", "exportable": False,
        "protection": "software", "created_by": "root", "created_at": created,
        "updated_at": now, "origin": "generated"})
    if i % 7 == 0:
        rows["key_labels"].append({"key_id": key_id, "label": "team", "value": f"t{i % 5}"})
    for v in range(1, count + 1):
        material, public = generate(spec)
        at = created + timedelta(days=v - 1)
        wrapped = deps.custody.wrap_material(namespace, keks[namespace], key_id, v,
                                             spec.name, material)
        rows["key_versions"].append({
            "key_id": key_id, "version": v, "state": "active", "wrapped_material": wrapped,
            "public_key": public, "created_at": at, "hsm_key_id": None})
        rows["key_events"].append({
            "key_id": key_id, "version": v, "action": "create" if v == 1 else "rotate",
            "from_state": None if v == 1 else "active", "to_state": "active",
            "principal": "root", "reason": None, "at": at})
        if spec.name in SYMMETRIC_ENCRYPT:
            context = {"drill": str(i)} if i % 2 else None
            plaintext = f"golden {key_id} v{v}".encode()
            blob = load_private(spec, material).encrypt(
                plaintext, associated_data(key_id, v, context))
            out.goldens.append(Golden(key_id, v, plaintext,
                                      header(key_id, v) + ":" + b64encode_as_string(blob),
                                      context))
    if state == "suspended":
        rows["key_events"].append({
            "key_id": key_id, "version": None, "action": "disable", "from_state": "active",
            "to_state": "suspended", "principal": "root", "reason": None, "at": now})
    out.keys += 1
    out.versions += count
    out.by_algorithm[spec.name] = out.by_algorithm.get(spec.name, 0) + 1
    out.states[key_id] = state


def _through_service(services: Services, out: Seeded, goldens: int, signatures: int) -> None:
    """Goldens and signatures made by the service itself, on active keys."""
    ctx = _ctx()
    with services.deps.reading() as conn:
        t = schema.keys
        rows = conn.execute(t.select().with_only_columns(t.c.id, t.c.algorithm, t.c.state)
                            .order_by(t.c.id)).all()
    active = [r for r in rows if r.state == "active"]
    encrypt = [r.id for r in active if r.algorithm in SYMMETRIC_ENCRYPT][:goldens]
    for key_id in encrypt:
        plaintext = f"service golden {key_id}".encode()
        made = services.crypto.encrypt(ctx, key_id, plaintext, {"by": "service"})
        out.service_goldens.append(Golden(key_id, made.key_version, plaintext,
                                          made.ciphertext, {"by": "service"}))
    signing: dict[str, list[str]] = {}
    for r in active:
        if get_spec(r.algorithm).purpose == "sign":
            signing.setdefault(r.algorithm, []).append(r.id)
    per = max(1, signatures // max(1, len(signing)))
    for ids in signing.values():
        for key_id in ids[:per]:
            message = f"signed {key_id}".encode()
            signature, _ = services.crypto.sign(ctx, key_id, message, prehashed=False,
                                                signature_format=None)
            out.signatures.append((key_id, message, signature))

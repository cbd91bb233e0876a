"""The key a create makes, before it is stored: shared by REST's create
(service/keys.py) and KMIP's Create and Register (service/kmip_keys.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from types import MappingProxyType

from keykeeper.crypto.registry import AlgorithmSpec
from keykeeper.domain.algorithm_policy import AlgorithmPolicy, resolve_algorithm
from keykeeper.domain.keys import Key, new_key_id
from keykeeper.domain.states import KeyState
from keykeeper.errors import NotFound
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.key_args import CreateKey
from keykeeper.service.key_lifecycle import lifecycle_at_creation
from keykeeper.store.system import NamespaceRow

__all__ = ["plan_key"]

def plan_key(d: Deps, ctx: RequestContext, args: CreateKey, *, origin: str = "generated",
             namespace: Callable[[str], NamespaceRow | None] | None = None,
             ) -> tuple[Key, AlgorithmSpec, NamespaceRow]:
    """The key a create makes (not yet stored): its namespace's algorithm policy applied,
    its rotation schedule and its lifecycle dates, limits and periods. Shared by REST's
    create (KeyAdmin.create) and KMIP's Create and Register (service/kmip_keys.py).
    ``namespace``: how to read the live namespace row (KeyLookup.namespace: at most the
    metadata TTL old); by default from the store. NotFound for an unknown namespace;
    InvalidArgument for a refused algorithm."""
    if namespace is not None:
        ns = namespace(args.namespace)
    else:
        with d.reading() as conn:
            ns = d.system.get_namespace(conn, args.namespace)
    if ns is None:
        raise NotFound(f"namespace '{args.namespace}' not found")
    spec = resolve_algorithm(args.purpose, args.algorithm,
                             AlgorithmPolicy(allow_legacy_rsa_2048=ns.allow_legacy_rsa_2048))
    now = d.clock()
    key = Key(id=new_key_id(), namespace=args.namespace, name=args.name, purpose=spec.purpose,
              algorithm=spec.name, state=KeyState.ACTIVE, primary_version=1, created_at=now,
              updated_at=now, description=args.description,
              labels=MappingProxyType(args.labels), exportable=args.exportable,
              protection=args.protection,
              rotation_period=args.rotation_period,
              next_rotation_time=(now + timedelta(seconds=args.rotation_period)
                                  if args.rotation_period else None),
              created_by=ctx.actor, origin=origin)
    return lifecycle_at_creation(key, args, ns, now), spec, ns  # dates, limits, periods

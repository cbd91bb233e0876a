"""Handlers of the ``/v1/sys`` routes: translate only; checks, actions and audit details
are in service/system.py and service/rekey.py."""

from __future__ import annotations

from collections.abc import Mapping

from keykeeper.rest import sys_schemas as s
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services
from keykeeper.service.rekey import RekeyStatus

Params = Mapping[str, str]


def health(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.Health:
    h = svc.system.health()
    status = ("uninitialized" if not h.initialized else "sealed" if h.sealed else "active")
    return s.Health(initialized=h.initialized, sealed=h.sealed, version=h.version,
                    status=status, scheduler=svc.scheduling.role,
                    node_id=svc.scheduling.node_id, seal_type=h.seal_type,
                    progress=h.progress, threshold=h.threshold, nonce=h.nonce,
                    seal_error=h.seal_error)


def init(svc: Services, ctx: RequestContext, p: Params, body: s.InitRequest) -> s.InitResponse:
    r = svc.system.init(body.passphrase, seal=body.seal, secret_shares=body.secret_shares,
                        secret_threshold=body.secret_threshold)
    return s.InitResponse(root_token=r.root_token, seal_type=r.seal_type,
                          unseal_passphrase=r.unseal_passphrase, keys=list(r.keys),
                          secret_shares=r.secret_shares, secret_threshold=r.secret_threshold)


def unseal(svc: Services, ctx: RequestContext, p: Params, body: s.UnsealRequest) -> s.Health:
    svc.system.unseal(body.passphrase, key=body.key, nonce=body.nonce, reset=body.reset)
    return health(svc, ctx, p, None)


def generate_root(svc: Services, ctx: RequestContext, p: Params,
                  body: s.GenerateRootRequest) -> s.GenerateRootResponse:
    g = svc.system.generate_root(body.passphrase, key=body.key, nonce=body.nonce,
                                 reset=body.reset)
    return s.GenerateRootResponse(expires_in=g.expires_in, root_token=g.root_token,
                                  complete=g.root_token is not None, progress=g.progress,
                                  threshold=g.threshold, nonce=g.nonce)


def seal(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.Health:
    svc.authz.require(ctx, "sys.seal")
    svc.system.seal()
    return health(svc, ctx, p, None)


def _status(st: RekeyStatus) -> s.RekeyStatus:
    return s.RekeyStatus(started=st.started, nonce=st.nonce, seal_type=st.seal_type,
                         new_seal_type=st.new_seal_type, progress=st.progress,
                         required=st.required, new_shares=st.new_shares,
                         new_threshold=st.new_threshold)


def rekey_init(svc: Services, ctx: RequestContext, p: Params,
               body: s.RekeyInitRequest) -> s.RekeyStatus:
    svc.authz.require(ctx, "sys.rekey")
    return _status(svc.system.rekey.start(body.seal, secret_shares=body.secret_shares,
                                          secret_threshold=body.secret_threshold,
                                          passphrase=body.passphrase))


def rekey_status(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.RekeyStatus:
    svc.authz.require(ctx, "sys.rekey")
    return _status(svc.system.rekey.status())


def rekey_cancel(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.RekeyStatus:
    svc.authz.require(ctx, "sys.rekey")
    return _status(svc.system.rekey.cancel())


def rekey_update(svc: Services, ctx: RequestContext, p: Params,
                 body: s.RekeyUpdateRequest) -> s.RekeyUpdateResponse:
    r = svc.system.rekey.update(body.nonce, passphrase=body.passphrase, key=body.key)
    st = r.status
    return s.RekeyUpdateResponse(complete=r.complete, nonce=st.nonce, seal_type=st.seal_type,
                                 progress=st.progress, required=st.required,
                                 keys=list(r.keys), unseal_passphrase=r.unseal_passphrase)

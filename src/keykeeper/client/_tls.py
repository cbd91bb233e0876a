"""TLS settings of the SDK: which CAs to trust and which client certificate to present.

Read from the arguments of :class:`~keykeeper.client.Client`, else from the
environment, with Vault's names: ``KEYKEEPER_CACERT`` (a PEM CA file, or a directory of
hashed CA files), ``KEYKEEPER_CLIENT_CERT`` and ``KEYKEEPER_CLIENT_KEY`` (PEM files; the
key may also sit in the certificate file). Without any of them httpx's default applies:
verify the server against the system's trust store, no client certificate.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import TypeAlias

import httpx

from keykeeper.errors import InvalidArgument

__all__ = ["CertArg", "VerifyArg", "has_client_cert", "ssl_config"]

VerifyArg: TypeAlias = "bool | str | os.PathLike[str] | ssl.SSLContext | None"
CertArg: TypeAlias = "str | os.PathLike[str] | tuple[str | os.PathLike[str], str | os.PathLike[str]] | None"  # noqa: E501


def ssl_config(verify: VerifyArg, cert: CertArg) -> bool | ssl.SSLContext:
    """What to pass to httpx as ``verify``: True (httpx's default context), False (no
    verification: only when asked for explicitly), or a context with the CA file and
    client certificate loaded (TLS 1.2 at least). Raises InvalidArgument, naming the
    file, when a CA file, certificate or key cannot be loaded, the key does not match
    the certificate, or a client certificate comes with ``verify=False`` or an
    :class:`ssl.SSLContext` (load it into that context instead)."""
    if verify is None:
        verify = os.environ.get("KEYKEEPER_CACERT") or True
    if cert is None:
        cert = _cert_from_env()
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise InvalidArgument("give the client certificate inside your SSLContext, not "
                                  "as cert= beside it")
        return verify
    if verify is False:
        if cert is not None:
            raise InvalidArgument("a client certificate needs server verification on")
        return False
    if verify is True and cert is None:
        return True
    ctx = httpx.create_ssl_context() if verify is True else _ca_context(Path(verify))
    ctx.minimum_version = max(ctx.minimum_version, ssl.TLSVersion.TLSv1_2)
    if cert is not None:
        certfile, keyfile = (cert if isinstance(cert, tuple) else (cert, None))
        for what, path in (("certificate", certfile), ("key", keyfile)):
            if path is not None and not os.path.isfile(path):
                raise InvalidArgument(f"cannot load the client {what} {os.fspath(path)}: "
                                      "no such file")
        try:
            ctx.load_cert_chain(certfile, keyfile)
        except OSError as exc:
            reason = _reason(exc)
            if keyfile is None and not _holds_private_key(certfile):
                reason = ("the file holds no private key: give the key file too "
                          "(--client-key or KEYKEEPER_CLIENT_KEY; in the SDK "
                          "cert=(certfile, keyfile))")
            raise InvalidArgument(f"cannot load the client certificate {os.fspath(certfile)}: "
                                  f"{reason}") from None
    return ctx


def has_client_cert(cert: CertArg) -> bool:
    """Whether a client certificate is configured (as ``cert`` or in the environment)."""
    return cert is not None or bool(os.environ.get("KEYKEEPER_CLIENT_CERT"))


def _cert_from_env() -> CertArg:
    certfile = os.environ.get("KEYKEEPER_CLIENT_CERT")
    keyfile = os.environ.get("KEYKEEPER_CLIENT_KEY")
    if keyfile and not certfile:
        raise InvalidArgument("KEYKEEPER_CLIENT_KEY is set without KEYKEEPER_CLIENT_CERT")
    if not certfile:
        return None
    return (certfile, keyfile) if keyfile else certfile


def _holds_private_key(path: str | os.PathLike[str]) -> bool:
    """Whether a PEM file has a private key block (a certificate file may carry its key)."""
    try:
        return b"PRIVATE KEY-----" in Path(path).read_bytes()
    except OSError:
        return False


def _ca_context(path: Path) -> ssl.SSLContext:
    if not path.exists():
        raise InvalidArgument(f"cannot load the CA certificates {path}: no such file")
    try:
        if path.is_dir():
            return ssl.create_default_context(capath=str(path))
        return ssl.create_default_context(cafile=str(path))
    except OSError as exc:
        raise InvalidArgument(f"cannot load the CA certificates {path}: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "KEY_VALUES_MISMATCH":
            return "the key does not match the certificate"
        return f"not usable PEM ({exc.reason or exc})"
    return exc.strerror or type(exc).__name__

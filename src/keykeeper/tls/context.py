"""The TLS server context of a listener, and the settings it is built from.

Policy (docs/tls.md; NIST SP 800-52 Rev. 2 §3.1-3.3, Mozilla's "intermediate" profile
without its finite-field DHE suites):

- TLS 1.2 at least; TLS 1.3 whenever the client offers it (OpenSSL picks the highest
  version both sides speak).
- TLS 1.2 cipher suites: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 only, i.e.
  AEAD with forward secrecy (:data:`TLS12_CIPHERS`); TLS 1.3 suites are all AEAD with an
  ephemeral exchange (OpenSSL's three defaults).
- No compression (CRIME), no renegotiation, no session tickets (a ticket key that lives
  as long as the process would undo forward secrecy for resumed TLS 1.2 sessions);
  OpenSSL security level 2: keys of at least 112-bit strength (RSA and DH >= 2048 bits,
  EC >= 224 bits), SHA-1 signatures refused.
- Client certificates (``client_auth``): ``none`` (not asked for), ``optional`` (asked
  for; a presented certificate must verify) or ``required`` (the handshake fails
  without one). A client certificate must chain to a certificate of the client CA file,
  pass OpenSSL's X.509 strict checks, be within its validity period and be fit for
  client authentication (its extended key usage, when present, lists ``clientAuth``).

:func:`server_context` checks the files itself first, so a bad setting is one clear line
at start (:class:`~keykeeper.errors.InvalidArgument`) rather than an OpenSSL error code.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature as InvalidSignatureError
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from keykeeper.errors import InvalidArgument

__all__ = ["CLIENT_AUTH_MODES", "TLS12_CIPHERS", "ClientAuth", "TlsSettings", "issuing_ca_file",
           "server_context"]

ClientAuth = Literal["none", "optional", "required"]
CLIENT_AUTH_MODES: tuple[ClientAuth, ...] = ("none", "optional", "required")

# OpenSSL cipher string for TLS 1.2 (TLS 1.3 suites are configured apart, and OpenSSL's
# defaults are all acceptable). Resolves to ECDHE-{ECDSA,RSA}-AES{256,128}-GCM-SHA{384,256}
# and ECDHE-{ECDSA,RSA}-CHACHA20-POLY1305; the exclusions drop anonymous, null,
# pre-shared-key and SRP variants that the two selectors could otherwise match.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!PSK:!SRP:!DSS:@SECLEVEL=2"

_VERIFY_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                 "required": ssl.CERT_REQUIRED}
_REST_NAMES = ("--tls-cert", "--tls-key", "--tls-client-ca", "--tls-client-auth")


@dataclass(frozen=True)
class TlsSettings:
    """A listener's certificate and key (PEM files; the certificate file may hold the
    chain, leaf first), and how it treats client certificates. ``names`` are the option
    names used in error messages: certificate, key, client CA, client auth."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth: ClientAuth = "none"
    names: tuple[str, str, str, str] = field(default=_REST_NAMES, compare=False)

    @classmethod
    def from_values(cls, cert_file: str | Path | None, key_file: str | Path | None,
                    client_ca_file: str | Path | None = None, client_auth: str | None = None,
                    *, names: tuple[str, str, str, str] = _REST_NAMES) -> TlsSettings | None:
        """The settings given by options or environment variables (empty means unset);
        None when none is set (plain TCP). Raises InvalidArgument when the certificate
        and key do not come together, for an unknown ``client_auth``, for ``optional``
        or ``required`` without a client CA file, or a client CA file with ``none``.
        A client CA file without ``client_auth`` means ``optional``."""
        cert_opt, key_opt, ca_opt, auth_opt = names
        auth = (client_auth or "").strip().lower()
        if not (cert_file or key_file or client_ca_file or auth):
            return None
        if not cert_file or not key_file:
            raise InvalidArgument(f"TLS needs both {cert_opt} and {key_opt}")
        if auth and auth not in CLIENT_AUTH_MODES:
            raise InvalidArgument(f"{auth_opt} must be none, optional or required, "
                                  f"got '{client_auth}'")
        if not auth:
            auth = "optional" if client_ca_file else "none"
        if auth != "none" and not client_ca_file:
            raise InvalidArgument(f"{auth_opt} {auth} needs {ca_opt} (the CA file that "
                                  "client certificates must chain to)")
        if auth == "none" and client_ca_file:
            raise InvalidArgument(f"{ca_opt} is given but {auth_opt} is none: give "
                                  "optional or required, or drop the CA file")
        return cls(cert_file=Path(cert_file), key_file=Path(key_file),
                   client_ca_file=Path(client_ca_file) if client_ca_file else None,
                   client_auth=cast(ClientAuth, auth), names=names)


def server_context(settings: TlsSettings, *, alpn: Sequence[str] = ("http/1.1",),
                   now: datetime | None = None) -> ssl.SSLContext:
    """A server :class:`ssl.SSLContext` with the module's policy, loaded with the
    listener's certificate and key and, unless ``client_auth`` is ``none``, the client
    CA file; ``alpn`` lists the application protocols offered (none for KMIP).

    Raises InvalidArgument, naming the option and the file, when a file cannot be read,
    is not PEM of the right kind, the key is encrypted, the key does not match the
    certificate, the certificate has expired (at ``now``, default the current time), or
    OpenSSL refuses the certificate or key (e.g. an RSA key under 2048 bits)."""
    cert_opt, key_opt, ca_opt, _ = settings.names
    chain = _certificates(settings.cert_file, cert_opt)
    key = _private_key(settings.key_file, key_opt)
    if _spki(chain[0].public_key()) != _spki(key.public_key()):
        raise InvalidArgument(f"{key_opt} {settings.key_file} does not match the certificate "
                              f"in {cert_opt} {settings.cert_file}")
    expires = chain[0].not_valid_after_utc
    if expires <= (now or datetime.now(UTC)):
        raise InvalidArgument(f"{cert_opt} {settings.cert_file}: the certificate expired on "
                              f"{expires:%Y-%m-%dT%H:%M:%SZ}")
    if settings.client_auth != "none":
        assert settings.client_ca_file is not None  # from_values guarantees it
        _certificates(settings.client_ca_file, ca_opt)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= (ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_TICKET
                    | ssl.OP_SINGLE_ECDH_USE)
    try:
        ctx.load_cert_chain(settings.cert_file, settings.key_file)
    except ssl.SSLError as exc:
        raise InvalidArgument(f"{cert_opt} {settings.cert_file} / {key_opt} "
                              f"{settings.key_file}: OpenSSL refused them "
                              f"({exc.reason or exc})") from None
    if settings.client_auth != "none":
        ctx.verify_mode = _VERIFY_MODES[settings.client_auth]
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        try:
            ctx.load_verify_locations(cafile=settings.client_ca_file)
        except ssl.SSLError as exc:
            raise InvalidArgument(f"{ca_opt} {settings.client_ca_file}: OpenSSL refused it "
                                  f"({exc.reason or exc})") from None
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"{option} {path}: cannot read it "
                              f"({exc.strerror or type(exc).__name__})") from None


def _certificates(path: Path, option: str) -> list[x509.Certificate]:
    data = _read(path, option)
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        chain = []
    if not chain:
        raise InvalidArgument(f"{option} {path}: not a PEM certificate file")
    return chain


def _private_key(path: Path, option: str) -> PrivateKeyTypes:
    data = _read(path, option)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InvalidArgument(f"{option} {path}: the key is encrypted; keykeeper reads an "
                              "unencrypted PEM key (keep the file mode 0600)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidArgument(f"{option} {path}: not a PEM private key") from None


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def issuing_ca_file(settings: TlsSettings) -> Path | None:
    """A CA file that issued the server certificate, when one is at hand: the client CA
    file, or a ``ca.pem`` beside the certificate (as ``keykeeper dev-certs`` writes it).
    For banners that tell a client what to trust (``KEYKEEPER_CACERT``); None when
    neither issued it or a file cannot be read (no error: it is only a hint)."""
    try:
        leaf = _certificates(settings.cert_file, settings.names[0])[0]
    except InvalidArgument:
        return None
    for candidate in (settings.client_ca_file, settings.cert_file.parent / "ca.pem"):
        if candidate is None or not candidate.is_file():
            continue
        try:
            cas = x509.load_pem_x509_certificates(candidate.read_bytes())
        except (OSError, ValueError):
            continue
        for ca in cas:
            try:
                leaf.verify_directly_issued_by(ca)
            except (ValueError, TypeError, UnsupportedAlgorithm, InvalidSignatureError):
                continue
            return candidate.resolve()
    return None

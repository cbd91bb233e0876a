"""The KMIP listener: TTLV over mutual TLS (KMIP 2.1 §10 / KMIP Profiles "TLS"; port 5696
by convention), one thread per connection.

* TLS 1.2 or later with keykeeper's policy (keykeeper.tls.server_context, no ALPN), a
  client certificate required: a handshake without one (or with one that does not chain
  to the client CA) fails and the connection closes. The verified certificate names the
  principal per message (service/cert_auth.py, as REST mTLS does); one that maps to no
  principal gets Authentication_Not_Successful in every batch item.
* Framing: each message is read by its 8-byte TTLV header (codec.message_length). A
  header that is not a Structure, or announces more than ``max_message`` bytes (1 MiB),
  gets an Invalid_Message answer and the connection closes (the stream cannot be
  resynchronised); a whole message that does not decode gets Invalid_Message and the
  connection stays open.
* Persistent connections: any number of requests per connection, answered in order; the
  connection closes after ``idle_timeout`` seconds without a request (300) or when a
  message is not complete within ``read_timeout`` (30) of its first byte (one deadline
  for the whole message, not per read: trickling bytes does not extend it).
* Operations run synchronously on the connection's thread (the service layer is
  synchronous): no hop between an event loop and a pool per request, which is the least
  CPU per operation for the usual KMIP client (a few long-lived connections).
* Connection limits: at most ``max_connections`` (256) connections past the TLS handshake
  (beyond, new ones are closed at once), plus at most ``max_handshakes`` (64) still in
  the handshake, which must complete within ``handshake_timeout`` (5 s). When the
  handshake pool is full, a new connection takes the place of the one that has been
  handshaking longest (which is closed): sockets that never start TLS cannot lock out
  clients with certificates, whose handshake takes milliseconds.
* The answer to one message is at most ``max_response`` bytes (4 MiB, or ``max_message``
  when larger); beyond, its items are Response_Too_Large (kmip/processor.py).
* A message refused as a whole (too long, undecodable) is audited (``kmip.unknown``).
* ``stop()`` closes the listener, closes idle connections, lets a request being served
  finish (its answer is sent) and waits for the threads (``grace`` seconds at most).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from keykeeper.authz.model import Principal
from keykeeper.errors import InvalidArgument, Unauthenticated
from keykeeper.kmip.call import KmipSettings
from keykeeper.kmip.processor import MAX_RESPONSE, Observer, Peer, Processor
from keykeeper.kmip.ttlv import TtlvError
from keykeeper.kmip.ttlv.codec import HEADER_SIZE, decode, encode, message_length
from keykeeper.service.facade import Services
from keykeeper.tls import TlsSettings, server_context

__all__ = ["KMIP_TLS_NAMES", "KmipListener", "ListenerSettings", "check_bindable",
           "kmip_settings_from_env",
           "kmip_tls_context", "kmip_tls_from_env", "listener_from_env"]

log = logging.getLogger("keykeeper.kmip")


@dataclass(frozen=True)
class ListenerSettings:
    host: str
    port: int
    max_message: int = 1024 * 1024      # bytes, header included
    idle_timeout: float = 300.0         # seconds between requests
    read_timeout: float = 30.0          # seconds to receive a whole message, from its first byte
    max_connections: int = 256          # connections past the TLS handshake
    handshake_timeout: float = 5.0      # seconds for the whole TLS handshake
    max_handshakes: int = 64            # connections in the TLS handshake at once
    grace: float = 5.0                  # seconds stop() waits for connections to finish
    reuse_port: bool = False            # several worker processes share the port


def listener_from_env(env: Mapping[str, str]) -> ListenerSettings | None:
    """``KEYKEEPER_KMIP_LISTEN`` (``HOST:PORT``; IPv6 as ``[::1]:5696``): None when unset
    (no KMIP listener). ``KEYKEEPER_KMIP_MAX_MESSAGE`` (bytes, 1 MiB) and
    ``KEYKEEPER_KMIP_IDLE_TIMEOUT`` (seconds, 300) tune it. InvalidArgument naming the
    setting for a malformed value."""
    listen = (env.get("KEYKEEPER_KMIP_LISTEN") or "").strip()
    if not listen:
        return None
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"KEYKEEPER_KMIP_LISTEN must be HOST:PORT, got '{listen[:64]}'")
    max_message = env.get("KEYKEEPER_KMIP_MAX_MESSAGE") or str(1024 * 1024)
    idle = env.get("KEYKEEPER_KMIP_IDLE_TIMEOUT") or "300"
    if not max_message.isdigit() or not 1024 <= int(max_message) <= 64 * 1024 * 1024:
        raise InvalidArgument("KEYKEEPER_KMIP_MAX_MESSAGE must be 1024..67108864 bytes, "
                              f"got '{max_message[:32]}'")
    try:
        idle_timeout = float(idle)
    except ValueError:
        idle_timeout = 0.0
    if not 0 < idle_timeout <= 86400:
        raise InvalidArgument(f"KEYKEEPER_KMIP_IDLE_TIMEOUT must be seconds in (0, 86400], "
                              f"got '{idle[:32]}'")
    return ListenerSettings(host=host or "127.0.0.1", port=int(port),
                            max_message=int(max_message), idle_timeout=idle_timeout,
                            reuse_port=env.get("KEYKEEPER_KMIP_REUSE_PORT") == "on")


# The KMIP listener's own certificate, key and client CA (docs/kmip.md); each one not set
# falls back to the REST listener's (--tls-cert / --tls-key as a pair, --tls-client-ca).
KMIP_TLS_NAMES = ("KEYKEEPER_KMIP_TLS_CERT_FILE", "KEYKEEPER_KMIP_TLS_KEY_FILE",
                  "KEYKEEPER_KMIP_TLS_CLIENT_CA_FILE", "KMIP client authentication")


def kmip_tls_from_env(env: Mapping[str, str], rest: TlsSettings | None) -> TlsSettings | None:
    """The KMIP listener's own TLS settings from ``KEYKEEPER_KMIP_TLS_CERT_FILE`` and
    ``KEYKEEPER_KMIP_TLS_KEY_FILE`` (PEM, given together) and
    ``KEYKEEPER_KMIP_TLS_CLIENT_CA_FILE``; a setting not given falls back to the REST
    listener's (``rest``: certificate and key as a pair, client CA). None when none of the
    three is set: the listener then uses ``rest`` as it is. Client certificates are
    required whenever a client CA is known (kmip_tls_context refuses the settings
    otherwise). InvalidArgument, naming the setting, when only one of the certificate and
    key is given, or a client CA alone with no REST certificate to fall back to."""
    cert_opt, key_opt, ca_opt, _ = KMIP_TLS_NAMES
    cert, key, ca = ((env.get(name) or "").strip() for name in (cert_opt, key_opt, ca_opt))
    if not (cert or key or ca):
        return None
    if bool(cert) != bool(key):
        raise InvalidArgument(f"the KMIP listener's certificate needs both {cert_opt} and "
                              f"{key_opt}")
    names = list(KMIP_TLS_NAMES)
    if not cert:
        if rest is None:
            raise InvalidArgument(f"{ca_opt} needs a certificate too: give {cert_opt} and "
                                  f"{key_opt} (or the REST listener's --tls-cert and --tls-key)")
        cert, key = str(rest.cert_file), str(rest.key_file)
        names[:2] = rest.names[:2]
    if not ca and rest is not None and rest.client_ca_file is not None:
        ca = str(rest.client_ca_file)
        names[2] = rest.names[2]
    return TlsSettings.from_values(cert, key, ca or None, "required" if ca else None,
                                   names=(names[0], names[1], names[2], names[3]))


def _bind(listen: ListenerSettings, *, reuse_port: bool) -> socket.socket:
    """A listening socket on the listener's address (IPv6 when the host has a colon)."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    return socket.create_server((listen.host.strip("[]"), listen.port), family=family,
                                backlog=128, reuse_port=reuse_port)


def check_bindable(listen: ListenerSettings, *, reuse_port: bool = False) -> None:
    """Whether the listener's address can be bound, as :meth:`KmipListener.start` binds
    it: InvalidArgument in one line (the address and the OS's reason, e.g. "Address
    already in use") for the server's start-up checks, before the REST server starts."""
    try:
        _bind(listen, reuse_port=reuse_port or listen.reuse_port).close()
    except OSError as exc:
        raise InvalidArgument(f"cannot listen for KMIP on {listen.host}:{listen.port}: "
                              f"{os.strerror(exc.errno) if exc.errno else exc} "
                              "(--kmip-listen, KEYKEEPER_KMIP_LISTEN)"
                              ) from None


def kmip_tls_context(tls: TlsSettings | None) -> ssl.SSLContext:
    """The listener's TLS context from ``tls``: the KMIP listener's own settings
    (kmip_tls_from_env) or else the REST listener's certificate and client CA; client
    certificates required, no ALPN (docs/kmip.md). InvalidArgument when TLS or the client
    CA is not configured, or a file is bad."""
    if tls is None or tls.client_ca_file is None:
        raise InvalidArgument("KEYKEEPER_KMIP_LISTEN needs TLS with client certificates: "
                              "give --tls-cert, --tls-key and --tls-client-ca, or the KMIP "
                              "listener's own KEYKEEPER_KMIP_TLS_CERT_FILE, _KEY_FILE and "
                              "_CLIENT_CA_FILE (docs/kmip.md)")
    return server_context(replace(tls, client_auth="required"), alpn=())


_MAX_LEASE_TIME = 365 * 86400  # KEYKEEPER_KMIP_LEASE_TIME at most a year


def kmip_settings_from_env(env: Mapping[str, str]) -> KmipSettings:
    """``KEYKEEPER_KMIP_NAMESPACE`` (default ``default``),
    ``KEYKEEPER_KMIP_EXTRACTABLE_DEFAULT`` (``true``/``false``, ``on``/``off``; default
    false) and ``KEYKEEPER_KMIP_LEASE_TIME`` (seconds, 0 to 31,536,000; default 3600).
    InvalidArgument for another value."""
    flag = (env.get("KEYKEEPER_KMIP_EXTRACTABLE_DEFAULT") or "false").strip().lower()
    if flag not in ("true", "false", "on", "off", "1", "0"):
        raise InvalidArgument("KEYKEEPER_KMIP_EXTRACTABLE_DEFAULT must be true or false, "
                              f"got '{flag[:32]}'")
    namespace = (env.get("KEYKEEPER_KMIP_NAMESPACE") or "default").strip()
    lease = (env.get("KEYKEEPER_KMIP_LEASE_TIME") or "3600").strip()
    if not (lease.isascii() and lease.isdigit()) or int(lease) > _MAX_LEASE_TIME:
        raise InvalidArgument("KEYKEEPER_KMIP_LEASE_TIME must be seconds in "
                              f"0..{_MAX_LEASE_TIME}, got '{lease[:32]}'")
    return KmipSettings(namespace=namespace, extractable_default=flag in ("true", "on", "1"),
                        lease_time=int(lease))



class _Connection:
    def __init__(self, sock: socket.socket, addr: str) -> None:
        self.sock: socket.socket = sock
        self.addr = addr
        self.busy = False
        self.lock = threading.Lock()
        self.handshaking = True          # these three under KmipListener._lock
        self.evicted = False
        self.started = time.monotonic()

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)  # the TCP socket under TLS


def _recv_exact(sock: socket.socket, n: int, deadline: float, *, start: bytes = b"") -> bytes:
    """``n`` bytes (``start`` first) by the monotonic ``deadline``; TimeoutError after it."""
    buf = bytearray(start)
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the message did not arrive in time")
        sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise TtlvError("the connection closed inside a message")
        buf += chunk
    return bytes(buf)


class KmipListener:
    """A per-node background task (services.background): ``start()`` binds and serves,
    ``stop()`` ends it. Raises OSError from ``start()`` when the address cannot be bound."""

    def __init__(self, services: Services, context: ssl.SSLContext,
                 listen: ListenerSettings, settings: KmipSettings,
                 observe: Observer | None = None) -> None:
        self.services, self.context, self.listen = services, context, listen
        self.processor = Processor(services, settings, observe=observe,
                                   max_response=max(MAX_RESPONSE, listen.max_message))
        self._sock: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: dict[_Connection, threading.Thread] = {}
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the OS chose for port 0)."""
        return int(self._sock.getsockname()[1]) if self._sock is not None else self.listen.port

    def start(self) -> None:
        self._sock = _bind(self.listen, reuse_port=self.listen.reuse_port)
        self._sock.settimeout(0.5)
        self._accepter = threading.Thread(target=self._accept_loop, name="kmip-accept",
                                          daemon=True)
        self._accepter.start()
        namespace = self.processor.settings.namespace
        log.info("KMIP listening on %s:%d (mutual TLS), namespace %s", self.listen.host,
                 self.port, namespace)
        if not self._namespace_exists(namespace):
            log.warning("the KMIP namespace '%s' (KEYKEEPER_KMIP_NAMESPACE) does not exist: "
                        "KMIP clients cannot create or register objects until it is created "
                        "(keykeeper namespace create %s)", namespace, namespace)

    def _namespace_exists(self, name: str) -> bool:
        """Whether the KMIP namespace exists (True when the store cannot be read now)."""
        deps = self.services.deps
        try:
            with deps.reading() as conn:
                return deps.system.get_namespace(conn, name) is not None
        except Exception:  # the store answers later; the listener starts anyway
            return True

    def stop(self) -> None:
        self._stopping.set()
        if self._accepter is not None:
            self._accepter.join(2.0)
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            conns = list(self._conns.items())
        for conn, _ in conns:
            with conn.lock:
                if not conn.busy:
                    conn.shutdown()
        for _, thread in conns:
            thread.join(self.listen.grace)
        for conn, _ in conns:
            conn.shutdown()

    # -- accepting -------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                raw, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                log.warning("KMIP accept failed", exc_info=True)
                continue
            with self._lock:
                full = self._established() >= self.listen.max_connections
            if full:
                log.warning("KMIP connection from %s refused: %d connections open",
                            addr[0], self.listen.max_connections)
                raw.close()
                continue
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(raw, str(addr[0]))
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                      name=f"kmip-{addr[0]}:{addr[1]}")
            with self._lock:
                victim = self._evict()
                self._conns[conn] = thread
            if victim is not None:
                log.info("KMIP handshake with %s dropped: %d handshakes in progress",
                         victim.addr, self.listen.max_handshakes)
                victim.shutdown()
            thread.start()

    def _established(self) -> int:
        """Connections past the handshake (the caller holds ``_lock``)."""
        return sum(1 for c in self._conns if not c.handshaking and not c.evicted)

    def _evict(self) -> _Connection | None:
        """When the handshake pool is full, the connection handshaking longest, marked
        evicted (the caller holds ``_lock`` and shuts it down)."""
        pending = [c for c in self._conns if c.handshaking and not c.evicted]
        if len(pending) < self.listen.max_handshakes:
            return None
        victim = min(pending, key=lambda c: c.started)
        victim.evicted = True
        return victim

    # -- one connection --------------------------------------------------------------------
    def _serve(self, conn: _Connection) -> None:
        try:
            conn.sock.settimeout(self.listen.handshake_timeout)  # for the whole handshake
            try:
                tls = self.context.wrap_socket(conn.sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.info("KMIP TLS handshake with %s failed: %s", conn.addr,
                         getattr(exc, "reason", None) or type(exc).__name__)
                return
            conn.sock = tls
            with self._lock:
                conn.handshaking = False
                over = conn.evicted or self._established() > self.listen.max_connections
            if over:
                log.warning("KMIP connection from %s closed: %d connections open",
                            conn.addr, self.listen.max_connections)
                return
            cert = tls.getpeercert(binary_form=True)
            peer = Peer("kmip", conn.addr, lambda: self._principal(cert))
            self._loop(conn, tls, peer)
        except Exception:
            log.exception("KMIP connection from %s failed", conn.addr)
        finally:
            with contextlib.suppress(OSError):
                conn.sock.close()
            with self._lock:
                self._conns.pop(conn, None)

    def _principal(self, cert: bytes | None) -> Principal:
        if not cert:
            raise Unauthenticated("no client certificate")
        auth = self.services.auth
        return auth.cached_certificate(cert) or auth.authenticate_certificate(cert)

    def _loop(self, conn: _Connection, tls: ssl.SSLSocket, peer: Peer) -> None:
        limit = self.listen.max_message
        while not self._stopping.is_set():
            tls.settimeout(self.listen.idle_timeout)
            try:
                first = tls.recv(HEADER_SIZE)
            except OSError:
                return  # idle too long, or shut down by stop()
            if not first:
                return  # closed by the client
            with conn.lock:
                conn.busy = True
            try:
                deadline = time.monotonic() + self.listen.read_timeout  # the whole message
                try:
                    header = _recv_exact(tls, HEADER_SIZE, deadline, start=first)
                except (TtlvError, OSError):
                    return
                try:
                    total = message_length(header, max_size=limit)
                except TtlvError as exc:
                    self.processor.audit_refusal(peer)
                    self._send(tls, encode(self.processor.invalid(str(exc))))
                    return
                try:
                    body = _recv_exact(tls, total - HEADER_SIZE, deadline)
                except (TtlvError, OSError):
                    return
                try:
                    message = decode(header + body, max_size=limit)
                except TtlvError as exc:
                    self.processor.audit_refusal(peer)
                    data = encode(self.processor.invalid(str(exc)))
                else:
                    data = self.processor.respond(message, peer)
                tls.settimeout(self.listen.read_timeout)  # to send the answer
                if not self._send(tls, data):
                    return
            finally:
                with conn.lock:
                    conn.busy = False

    @staticmethod
    def _send(tls: ssl.SSLSocket, data: bytes) -> bool:
        try:
            tls.sendall(data)
        except OSError:
            return False
        return True

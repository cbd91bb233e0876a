"""One PKCS#11 token: configuration, login, and a pool of sessions (python-pkcs11).

The token is found by label or by serial number, never by slot number (SoftHSM and real
HSMs renumber slots). The user PIN comes from a file or an environment variable and is
held only by the loaded library's login state; it is never logged or put into an error.

Every PKCS#11 fault becomes a keykeeper error that fails closed (issue 6 §2):

* the library cannot be loaded, the token is missing, the PIN is wrong or locked, or a
  session fails: :class:`~keykeeper.errors.Unavailable` (503);
* a login the token refused (wrong, locked, expired or invalid PIN) is
  :class:`LoginRefused` (an ``Unavailable``), and the token then tries no more logins
  until :meth:`Token.reload_pin`: a real HSM locks the user PIN after a few failures, so a
  wrong PIN must not be retried on every request or every retry tick (docs/hsm.md);
* the token lacks a mechanism: :class:`~keykeeper.errors.FailedPrecondition` (409).

Never a fall-back to software keys. A session that raised is closed, not returned to the
pool; the next call opens a fresh one (and logs in again if the token was reset).

Calls into the library are serialized per process (:data:`LIBRARY_LOCK`): python-pkcs11
calls ``C_Initialize`` with no arguments, which tells the library that the application
will not call it from several threads at once (PKCS#11 v2.40 §5.4), and SoftHSM2 then
takes no locks of its own (concurrent calls crash it). Sessions are still pooled, so no
call pays for opening one.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import os
import queue
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keykeeper.errors import FailedPrecondition, InvalidArgument, KeykeeperError, Unavailable

__all__ = ["HsmConfig", "LoginRefused", "Token"]

log = logging.getLogger("keykeeper.hsm")

LIBRARY_LOCK = threading.RLock()
"""Held around every use of a PKCS#11 library in this process (see the module docstring)."""

DEFAULT_LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
POOL_SIZE = 4


@dataclass(frozen=True, slots=True)
class HsmConfig:
    """Where the token is and how to log in. ``pin`` is never shown by ``repr``."""

    library: str
    token_label: str | None = None
    token_serial: str | None = None
    pin: str = ""

    def __repr__(self) -> str:
        return (f"HsmConfig(library={self.library!r}, token_label={self.token_label!r}, "
                f"token_serial={self.token_serial!r}, pin=<hidden>)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HsmConfig | None:
        """From ``KEYKEEPER_PKCS11_LIBRARY``, ``KEYKEEPER_PKCS11_TOKEN_LABEL`` or
        ``KEYKEEPER_PKCS11_TOKEN_SERIAL``, and ``KEYKEEPER_PKCS11_PIN_FILE`` or
        ``KEYKEEPER_PKCS11_PIN``. None when neither a label nor a serial is set (no HSM).
        InvalidArgument when the settings are incomplete or the PIN file unreadable."""
        env = os.environ if env is None else env
        label = env.get("KEYKEEPER_PKCS11_TOKEN_LABEL") or None
        serial = env.get("KEYKEEPER_PKCS11_TOKEN_SERIAL") or None
        if label is None and serial is None:
            return None
        pin_file = env.get("KEYKEEPER_PKCS11_PIN_FILE")
        if pin_file:
            try:
                pin = Path(pin_file).read_text().strip()
            except OSError as exc:
                raise InvalidArgument(f"cannot read KEYKEEPER_PKCS11_PIN_FILE: "
                                      f"{exc.strerror or type(exc).__name__}") from None
        else:
            pin = env.get("KEYKEEPER_PKCS11_PIN", "")
        if not pin:
            raise InvalidArgument("a PKCS#11 token needs its user PIN: set "
                                  "KEYKEEPER_PKCS11_PIN_FILE or KEYKEEPER_PKCS11_PIN")
        return cls(library=env.get("KEYKEEPER_PKCS11_LIBRARY") or DEFAULT_LIBRARY,
                   token_label=label, token_serial=serial, pin=pin)


class LoginRefused(Unavailable):
    """The token refused the user PIN (``reason``: the PKCS#11 error's class name, e.g.
    ``PinIncorrect``). Still ``unavailable`` (503) to a caller; the token tries no more
    logins until :meth:`Token.reload_pin`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the HSM refused the login ({reason}); no more logins are "
                         "tried, so the token does not lock the PIN: correct the PIN, then "
                         "unseal again (pkcs11 seal) or restart the server")


def _login_refusals() -> tuple[type[BaseException], ...]:
    import pkcs11.exceptions as p11x

    return (p11x.PinIncorrect, p11x.PinLocked, p11x.PinExpired, p11x.PinInvalid,
            p11x.PinLenRange, p11x.UserPinNotInitialized)


def _fault(exc: BaseException) -> KeykeeperError:
    """Map a python-pkcs11 exception to a fail-closed keykeeper error (no PIN, no text
    from the library beyond the exception class name)."""
    import pkcs11.exceptions as p11x

    name = type(exc).__name__
    if isinstance(exc, (p11x.MechanismInvalid, p11x.MechanismParamInvalid,
                        p11x.FunctionNotSupported)):
        return FailedPrecondition(f"the HSM does not support this operation ({name})")
    if isinstance(exc, _login_refusals()):
        return LoginRefused(name)
    return Unavailable(f"the HSM failed ({name})")


class Token:
    """A logged-in PKCS#11 token with a small pool of read-write sessions.

    ``with token.session() as s:`` lends a python-pkcs11 ``Session``. Thread-safe.
    Raises :class:`Unavailable` when the token cannot be reached or logged in to, and
    :class:`LoginRefused` (without calling the token again) once it refused the PIN.
    ``login_attempts`` counts the ``C_Login`` calls made (what a token's PIN counter sees).
    """

    def __init__(self, config: HsmConfig, pool_size: int = POOL_SIZE) -> None:
        self.config = config
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._lock = threading.Lock()
        self._token: Any = None
        self._refused: LoginRefused | None = None
        self.login_attempts = 0

    @property
    def login_refused(self) -> bool:
        """True after the token refused the PIN, until :meth:`reload_pin`."""
        return self._refused is not None

    def reload_pin(self, env: Mapping[str, str] | None = None, *,
                   only_if_changed: bool = False) -> bool:
        """Read the user PIN again (``KEYKEEPER_PKCS11_PIN_FILE``, else
        ``KEYKEEPER_PKCS11_PIN``; :meth:`HsmConfig.from_env`) and allow logins again.
        The library, label and serial stay as configured at start. With
        ``only_if_changed``, a PIN equal to the current one changes nothing and answers
        False (so a refused PIN is not tried again). InvalidArgument when the PIN
        settings are gone or the file cannot be read."""
        fresh = HsmConfig.from_env(env)
        if fresh is None:
            raise InvalidArgument("the PKCS#11 token settings are gone: set "
                                  "KEYKEEPER_PKCS11_TOKEN_LABEL (or _SERIAL)")
        with self._lock:
            same = hmac.compare_digest(fresh.pin.encode(), self.config.pin.encode())
            if only_if_changed and same:
                return False
            self.config = dataclasses.replace(self.config, pin=fresh.pin)
            self._refused = None
            return True

    def _open_token(self) -> Any:
        with LIBRARY_LOCK, self._lock:
            if self._token is None:
                try:
                    import pkcs11

                    lib = pkcs11.lib(self.config.library)
                except Exception as exc:
                    raise Unavailable(f"cannot load the PKCS#11 library "
                                      f"({type(exc).__name__})") from None
                try:
                    if self.config.token_serial is not None:
                        self._token = lib.get_token(
                            token_serial=self.config.token_serial.encode())
                    else:
                        self._token = lib.get_token(token_label=self.config.token_label)
                except Exception as exc:
                    which = (f"serial {self.config.token_serial}" if self.config.token_serial
                             else f"label {self.config.token_label!r}")
                    raise Unavailable(f"no single PKCS#11 token with {which} "
                                      f"({type(exc).__name__})") from None
            return self._token

    def _new_session(self) -> Any:
        import pkcs11.exceptions as p11x

        if self._refused is not None:  # never C_Login again with a refused PIN
            raise LoginRefused(self._refused.reason)
        token = self._open_token()
        try:
            try:
                self.login_attempts += 1
                return token.open(user_pin=self.config.pin, rw=True)
            except p11x.UserAlreadyLoggedIn:
                # PKCS#11 login state is per process and token (v2.40 §5.6): another
                # session logged in already, so this one shares that login.
                return token.open(rw=True)
        except Exception as exc:
            fault = _fault(exc)
            with self._lock:  # a reset or removed token: find it again next time
                self._token = None
                if isinstance(fault, LoginRefused):
                    self._refused = fault
                    log.warning("the PKCS#11 token refused the login (%s): no more logins "
                                "until the PIN is reloaded", fault.reason)
            raise fault from None

    @contextmanager
    def session(self) -> Iterator[Any]:
        """Lend a session; one that raised is closed and replaced, and the exception
        becomes :class:`Unavailable` or :class:`FailedPrecondition` (keykeeper errors
        raised inside pass through unchanged)."""
        with LIBRARY_LOCK, self._slots:
            try:
                s = self._pool.get_nowait()
            except queue.Empty:
                s = self._new_session()
            try:
                yield s
            except KeykeeperError:
                self._pool.put(s)
                raise
            except Exception as exc:
                self._discard(s)
                raise _fault(exc) from None
            else:
                self._pool.put(s)

    def _discard(self, s: Any) -> None:
        try:
            s.close()
        except Exception:
            log.debug("closing a failed PKCS#11 session failed", exc_info=True)

    def check(self) -> None:
        """Open (or reuse) a session now: Unavailable if the token cannot be used."""
        with self.session():
            pass

    def close(self) -> None:
        """Close every pooled session (the library's login ends with the last one)."""
        with LIBRARY_LOCK:
            self._close_pooled()

    def _close_pooled(self) -> None:
        while True:
            try:
                s = self._pool.get_nowait()
            except queue.Empty:
                break
            self._discard(s)

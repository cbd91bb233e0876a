"""System and key-lifecycle routes of the SDK (``/v1/sys/*``, ``/v1/keys``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from keykeeper.client._http import KEEP, NULL, Http, key_path
from keykeeper.client.models import (
    GeneratedRoot,
    Health,
    InitResult,
    Key,
    KeyPage,
    KeyVersion,
    RekeyStatus,
    RekeyUpdate,
    _Versions,
)

__all__ = ["KeysMixin"]


def _period(value: int | str | timedelta | None) -> int | str | None:
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return value


_Period = int | str | timedelta
_Time = datetime | str

# Lifecycle fields of update_key: None clears one, KEEP (leaving it out) keeps it.
_LIFECYCLE = ("rotation_period", "next_rotation_time", "min_encryption_version",
              "min_decryption_version", "usage_limit", "usage_rotate_fraction",
              "originator_usage_period", "recipient_usage_period", "activation_date",
              "deactivation_date")


def _label_params(labels: Mapping[str, str] | None) -> list[str] | None:
    if not labels:
        return None
    return [f"{k}={v}" for k, v in labels.items()]


class KeysMixin:
    """Routes that manage the server and keys; mixed into :class:`Client`."""

    _http: Http

    # -- system ---------------------------------------------------------------

    def health(self) -> Health:
        """``GET /v1/sys/health`` (no auth). Raises ConnectionFailed if unreachable."""
        return self._http.call("GET", "/v1/sys/health", Health, auth=False)

    def init(self, passphrase: str | None = None, *, seal: str | None = None,
             secret_shares: int | None = None,
             secret_threshold: int | None = None) -> InitResult:
        """``POST /v1/sys/init`` (once). ``seal``: "passphrase" (default; the server makes
        a passphrase if none is given), "shamir" (``secret_shares``/``secret_threshold``,
        defaults 5 and 3) or "pkcs11" (the server's token; it unseals itself).

        The result is shown once: store the token and the material. Passphrase and shamir
        stay sealed. Raises AlreadyExists if already initialized, InvalidArgument for bad
        parameters, FailedPrecondition for pkcs11 without a token.
        """
        return self._http.call(
            "POST", "/v1/sys/init", InitResult, auth=False,
            body={"passphrase": passphrase, "seal": seal, "secret_shares": secret_shares,
                  "secret_threshold": secret_threshold})

    def unseal(self, passphrase: str | None = None, *, key: str | None = None,
               nonce: str | None = None, reset: bool = False) -> Health:
        """``POST /v1/sys/unseal`` with the passphrase, or one base64 share ``key`` per call
        (the answer's ``progress``/``threshold``), or ``reset``; under pkcs11 no argument
        retries a failed auto-unseal. InvalidArgument on wrong material."""
        return self._http.call(
            "POST", "/v1/sys/unseal", Health, auth=False,
            body={"passphrase": passphrase, "key": key, "nonce": nonce,
                  "reset": True if reset else None})

    def generate_root(self, passphrase: str | None = None, *, key: str | None = None,
                      nonce: str | None = None, reset: bool = False) -> GeneratedRoot:
        """``POST /v1/sys/generate-root``: recovery when no administrator is left; a root
        token valid for ``expires_in`` seconds, for the passphrase or a threshold of
        shares (one per call, with progress). InvalidArgument on wrong material;
        FailedPrecondition under pkcs11."""
        return self._http.call("POST", "/v1/sys/generate-root", GeneratedRoot, auth=False,
                               body={"passphrase": passphrase, "key": key, "nonce": nonce,
                                     "reset": True if reset else None})

    def rekey_init(self, seal: str | None = None, *, secret_shares: int | None = None,
                   secret_threshold: int | None = None,
                   passphrase: str | None = None) -> RekeyStatus:
        """``POST /v1/sys/rekey/init`` (``sys.rekey``): start a rekey to ``seal`` (default:
        the current type, new material); ``passphrase`` is the new one (else generated).
        FailedPrecondition if one is in progress."""
        return self._http.call("POST", "/v1/sys/rekey/init", RekeyStatus,
                               body={"seal": seal, "secret_shares": secret_shares,
                                     "secret_threshold": secret_threshold,
                                     "passphrase": passphrase})

    def rekey_status(self) -> RekeyStatus:
        """``GET /v1/sys/rekey/init`` (``sys.rekey``)."""
        return self._http.call("GET", "/v1/sys/rekey/init", RekeyStatus)

    def rekey_cancel(self) -> RekeyStatus:
        """``DELETE /v1/sys/rekey/init`` (``sys.rekey``): forget the attempt."""
        return self._http.call("DELETE", "/v1/sys/rekey/init", RekeyStatus)

    def rekey_update(self, nonce: str, *, passphrase: str | None = None,
                     key: str | None = None) -> RekeyUpdate:
        """``POST /v1/sys/rekey/update``: the current passphrase, one current share, or
        (pkcs11) nothing; at the threshold the answer holds the new material, once."""
        return self._http.call("POST", "/v1/sys/rekey/update", RekeyUpdate, auth=False,
                               body={"nonce": nonce, "passphrase": passphrase, "key": key})

    def seal(self) -> Health:
        """``POST /v1/sys/seal``: drop the root key from memory (needs a privileged token)."""
        return self._http.call("POST", "/v1/sys/seal", Health, body={})

    # -- keys -----------------------------------------------------------------

    def create_key(
        self,
        name: str,
        *,
        namespace: str | None = None,
        purpose: str | None = None,
        algorithm: str | None = None,
        rotation_period: int | str | timedelta | None = None,
        labels: Mapping[str, str] | None = None,
        description: str | None = None,
        exportable: bool | None = None,
        activation_date: _Time | None = None,
        deactivation_date: _Time | None = None,
        usage_limit: int | None = None,
        usage_rotate_fraction: float | None = None,
        originator_usage_period: _Period | None = None,
        recipient_usage_period: _Period | None = None,
        origin: str | None = None,
        protection: str | None = None,
    ) -> Key:
        """``POST /v1/keys``. ``origin="external"``: a key with no version until material is
        imported (:meth:`import_key_material`). ``rotation_period`` is seconds, a
        timedelta, or "90d"/"12h" (default: the namespace's). ``name`` may be
        ``namespace:name`` (as the CLI and key references accept), unless ``namespace`` is
        given too.

        Lifecycle: an ``activation_date`` (aware datetime or RFC 3339 text) in the future
        makes the key pre-active until then; ``deactivation_date`` must come after it;
        ``usage_limit`` caps protect operations per version (at most 2^32 for AES-GCM and
        ChaCha20-Poly1305); ``usage_rotate_fraction`` (0 < f <= 1) of it starts a rotation;
        the usage periods (durations as ``rotation_period``) override the SP 800-57 ones.

        ``protection="hsm"``: generated and used inside the server's PKCS#11 token
        (docs/hsm.md); FailedPrecondition if the server has none, Unavailable if it fails.

        Raises AlreadyExists if the name is taken in the namespace, InvalidArgument
        for a bad name, purpose, algorithm or lifecycle value.
        """
        if namespace is None and ":" in name:
            namespace, _, name = name.partition(":")
        body: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "purpose": purpose,
            "algorithm": algorithm,
            "rotation_period": _period(rotation_period),
            "labels": dict(labels) if labels is not None else None,
            "description": description,
            "exportable": exportable,
            "protection": protection,
            "activation_date": activation_date,
            "deactivation_date": deactivation_date,
            "usage_limit": usage_limit,
            "usage_rotate_fraction": usage_rotate_fraction,
            "originator_usage_period": _period(originator_usage_period),
            "recipient_usage_period": _period(recipient_usage_period),
            "origin": origin,
        }
        return self._http.call("POST", "/v1/keys", Key, body=body)

    def list_keys(
        self,
        *,
        namespace: str | None = None,
        state: str | None = None,
        purpose: str | None = None,
        labels: Mapping[str, str] | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> KeyPage:
        """``GET /v1/keys``: one page; ``labels`` must all match (sent as ``label=k=v``)."""
        params = {
            "namespace": namespace,
            "state": state,
            "purpose": purpose,
            "label": _label_params(labels),
            "page_size": page_size,
            "page_token": page_token,
        }
        return self._http.call("GET", "/v1/keys", KeyPage, params=params)

    def iter_keys(
        self,
        *,
        namespace: str | None = None,
        state: str | None = None,
        purpose: str | None = None,
        labels: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[Key]:
        """Every key matching the filters, fetching pages lazily as the iterator advances."""
        token: str | None = None
        while True:
            page = self.list_keys(
                namespace=namespace,
                state=state,
                purpose=purpose,
                labels=labels,
                page_size=page_size,
                page_token=token,
            )
            yield from page.keys
            if not page.next_page_token:
                return
            token = page.next_page_token

    def get_key(self, key: str) -> Key:
        """``GET /v1/keys/{key}``; ``key`` is an id, ``namespace:name`` or a name.

        Raises NotFound."""
        return self._http.call("GET", key_path(key), Key)

    def update_key(
        self,
        key: str,
        *,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        rotation_period: _Period | None = KEEP,
        next_rotation_time: _Time | None = KEEP,
        min_encryption_version: int | None = KEEP,
        min_decryption_version: int | None = KEEP,
        usage_limit: int | None = KEEP,
        usage_rotate_fraction: float | None = KEEP,
        originator_usage_period: _Period | None = KEEP,
        recipient_usage_period: _Period | None = KEEP,
        activation_date: _Time | None = KEEP,
        deactivation_date: _Time | None = KEEP,
    ) -> Key:
        """``PATCH /v1/keys/{key}``: set the description, replace the labels, and change
        lifecycle settings. A lifecycle argument left out keeps its value; ``None`` clears
        it (``rotation_period=None`` stops scheduled rotation; ``usage_limit=None`` returns
        to the algorithm's limit; a usage period to the namespace's or SP 800-57's).
        ``min_decryption_version``: 0 (every version) or 1..primary;
        ``min_encryption_version``: 0 (only the primary) or min_decryption_version..primary.
        ``activation_date`` only while the key is pre-active. Raises InvalidArgument
        naming the field and the rule, FailedPrecondition for a date that may not change."""
        body: dict[str, Any] = {
            "description": description,
            "labels": dict(labels) if labels is not None else None,
        }
        given = {"rotation_period": _period(rotation_period)
                 if rotation_period is not KEEP else KEEP,
                 "next_rotation_time": next_rotation_time,
                 "min_encryption_version": min_encryption_version,
                 "min_decryption_version": min_decryption_version,
                 "usage_limit": usage_limit, "usage_rotate_fraction": usage_rotate_fraction,
                 "originator_usage_period": _period(originator_usage_period)
                 if originator_usage_period is not KEEP else KEEP,
                 "recipient_usage_period": _period(recipient_usage_period)
                 if recipient_usage_period is not KEEP else KEEP,
                 "activation_date": activation_date, "deactivation_date": deactivation_date}
        for name in _LIFECYCLE:
            value = given[name]
            if value is not KEEP:
                body[name] = NULL if value is None else value
        return self._http.call("PATCH", key_path(key), Key, body=body)

    def activate_key(self, key: str) -> Key:
        """``POST /v1/keys/{key}/activate``: a pre-active key becomes active now (KMIP
        Activate). Raises FailedPrecondition in any other state."""
        return self._http.call("POST", key_path(key, "activate"), Key, body={})

    def trim_key(self, key: str, min_available_version: int) -> Key:
        """``POST /v1/keys/{key}/trim``: crypto-erase every version below
        ``min_available_version`` (at least 1, at most the primary version and the
        ``min_decryption_version`` when set). Dual control by default: raises
        ApprovalRequired (with the approval id) unless the caller is root."""
        body = {"min_available_version": min_available_version}
        return self._http.call("POST", key_path(key, "trim"), Key, body=body)

    def list_versions(self, key: str) -> list[KeyVersion]:
        """``GET /v1/keys/{key}/versions``, oldest first as the server orders them."""
        return self._http.call("GET", key_path(key, "versions"), _Versions).versions

    def rotate_key(self, key: str) -> Key:
        """``POST /v1/keys/{key}/rotate``: make a new primary version."""
        return self._http.call("POST", key_path(key, "rotate"), Key, body={})

    def disable_key(self, key: str) -> Key:
        """``POST /v1/keys/{key}/disable``: suspend every use of the key."""
        return self._http.call("POST", key_path(key, "disable"), Key, body={})

    def enable_key(self, key: str) -> Key:
        """``POST /v1/keys/{key}/enable``: undo :meth:`disable_key`."""
        return self._http.call("POST", key_path(key, "enable"), Key, body={})

    def schedule_destruction(self, key: str, *, pending_days: int | None = None) -> Key:
        """``POST /v1/keys/{key}/schedule-destruction``; ``pending_days`` 7..30 (server
        default 30). Raises InvalidArgument outside that range."""
        body = {"pending_days": pending_days}
        return self._http.call("POST", key_path(key, "schedule-destruction"), Key, body=body)

    def cancel_destruction(self, key: str) -> Key:
        """``POST /v1/keys/{key}/cancel-destruction``. Raises FailedPrecondition if none pending."""
        return self._http.call("POST", key_path(key, "cancel-destruction"), Key, body={})

    def compromise_key(self, key: str, reason: str, *,
                       compromise_time: _Time | None = None) -> Key:
        """``POST /v1/keys/{key}/compromise``: mark the key compromised (irreversible).
        ``compromise_time``: when it happened (aware datetime or RFC 3339; default now;
        never in the future) -- KMIP's Compromise Occurrence Date."""
        body: dict[str, Any] = {"reason": reason}
        if compromise_time is not None:
            body["compromise_time"] = compromise_time
        return self._http.call("POST", key_path(key, "compromise"), Key, body=body)

    def destroy_version(self, key: str, version: int) -> KeyVersion:
        """``POST /v1/keys/{key}/versions/{version}/destroy``: crypto-erase one version."""
        path = key_path(key, "versions", str(version), "destroy")
        return self._http.call("POST", path, KeyVersion, body={})

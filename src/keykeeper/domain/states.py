"""Key and key-version states and the transitions between them.

States follow NIST SP 800-57 Part 1 Rev 5 §7 and KMIP 2.1 §3.22 (State), with
``suspended`` for a disabled key (SP 800-57 §7.2.2) and ``pending-destruction``
for a key whose destruction is scheduled (as Cloud KMS's DESTROY_SCHEDULED and
AWS KMS's PendingDeletion). Which operations a state allows:

============================  =================  ==================================
state                         protect            process
                              (encrypt, sign,    (decrypt, verify, verify-mac,
                              mac, data-key,     decapsulate, rewrap's decrypt)
                              encapsulate)
============================  =================  ==================================
pre-active                    no                 no
active                        yes                yes
suspended                     no                no
deactivated                   no                 yes   (SP 800-57 §7.3)
compromised                   no                 yes   (SP 800-57 §7.3, KMIP §3.22)
pending-destruction           no                 no
destroyed                     no                 no
destroyed-compromised         no                 no
============================  =================  ==================================
"""

from __future__ import annotations

import enum

from keykeeper.errors import FailedPrecondition

__all__ = ["ERASED", "KeyState", "Use", "VersionState", "check_key_use", "check_transition"]


class KeyState(enum.StrEnum):
    PRE_ACTIVE = "pre-active"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    COMPROMISED = "compromised"
    PENDING_DESTRUCTION = "pending-destruction"
    DESTROYED = "destroyed"
    DESTROYED_COMPROMISED = "destroyed-compromised"


class VersionState(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    COMPROMISED = "compromised"
    DESTROYED = "destroyed"
    DESTROYED_COMPROMISED = "destroyed-compromised"


#: Version states whose material has been crypto-erased.
ERASED: frozenset[VersionState] = frozenset({VersionState.DESTROYED,
                                            VersionState.DESTROYED_COMPROMISED})


class Use(enum.StrEnum):
    PROTECT = "protect"
    PROCESS = "process"


_KEY_USES: dict[KeyState, frozenset[Use]] = {
    KeyState.ACTIVE: frozenset({Use.PROTECT, Use.PROCESS}),
    KeyState.DEACTIVATED: frozenset({Use.PROCESS}),
    KeyState.COMPROMISED: frozenset({Use.PROCESS}),
}

_VERSION_USES: dict[VersionState, frozenset[Use]] = {
    VersionState.ACTIVE: frozenset({Use.PROTECT, Use.PROCESS}),
    VersionState.DEACTIVATED: frozenset({Use.PROCESS}),
    VersionState.COMPROMISED: frozenset({Use.PROCESS}),
}

# Allowed key transitions: action -> (from states, to state). ``None`` as the
# target means "decided by the action" (see service/lifecycle.py).
_TRANSITIONS: dict[str, frozenset[KeyState]] = {
    "rotate": frozenset({KeyState.ACTIVE}),
    "disable": frozenset({KeyState.ACTIVE}),
    "enable": frozenset({KeyState.SUSPENDED}),
    "schedule-destruction": frozenset(
        {KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.SUSPENDED, KeyState.DEACTIVATED,
         KeyState.COMPROMISED}
    ),
    "cancel-destruction": frozenset({KeyState.PENDING_DESTRUCTION}),
    "compromise": frozenset(
        {KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.SUSPENDED, KeyState.DEACTIVATED,
         KeyState.PENDING_DESTRUCTION}
    ),
    "destroy-version": frozenset(
        {KeyState.ACTIVE, KeyState.SUSPENDED, KeyState.DEACTIVATED, KeyState.COMPROMISED,
         KeyState.PENDING_DESTRUCTION}
    ),
    "update": frozenset(
        {KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.SUSPENDED, KeyState.DEACTIVATED,
         KeyState.COMPROMISED, KeyState.PENDING_DESTRUCTION}
    ),
}


def check_transition(action: str, state: KeyState) -> None:
    """Raise :class:`FailedPrecondition` unless ``action`` is allowed from ``state``."""
    allowed = _TRANSITIONS[action]
    if state not in allowed:
        raise FailedPrecondition(f"cannot {action} a key in state '{state}'")


_USE_WORDS = {Use.PROTECT: "encrypt, sign, MAC or make data keys",
              Use.PROCESS: "decrypt or verify"}
_STATE_WORDS = {KeyState.SUSPENDED: "suspended (disabled)",
                VersionState.SUSPENDED: "suspended (disabled)"}


def check_key_use(key_state: KeyState, version_state: VersionState, use: Use,
                  *, version: int) -> None:
    """Raise :class:`FailedPrecondition` unless the key and the version allow ``use``."""
    if use not in _KEY_USES.get(key_state, frozenset()):
        shown = _STATE_WORDS.get(key_state, str(key_state))
        raise FailedPrecondition(f"the key is {shown}: it cannot {_USE_WORDS[use]}")
    if use not in _VERSION_USES.get(version_state, frozenset()):
        shown = _STATE_WORDS.get(version_state, str(version_state))
        raise FailedPrecondition(
            f"key version {version} is {shown}: it cannot {_USE_WORDS[use]}")

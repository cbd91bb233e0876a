"""The PKCS#11 structures keykeeper answers over KMIP (the PKCS#11 operation, kmip/ops/
pkcs11.py), packed as the KMIP PKCS#11 Profile encodes parameters, and the one token
they describe.

Encoding (KMIP Profiles 2.1 §5.18.1; checked against the test case PKCS11-M-1-21, whose
CK_INFO is 76 bytes with an 8-byte ``flags``):

* CK_BYTE, CK_BBOOL, CK_CHAR, CK_UTF8CHAR: one byte; CK_VERSION: major, minor;
* CK_ULONG (CK_FLAGS, CK_SLOT_ID, CK_MECHANISM_TYPE, sizes): 8 bytes, big-endian
  (network byte order, as everything in KMIP; the vector's zero flags fix the width,
  not the order);
* a CK_ULONG that counts a variable-length array (``pulCount``): 4 bytes, big-endian,
  immediately before the array;
* fixed-size character arrays: blank-padded, not NUL-terminated (PKCS#11 3.0 §3.1).

Structures (PKCS#11 3.0 §3.2, §3.3):

=================  =====  =======================================================
CK_INFO             76 B  cryptokiVersion(2) manufacturerID[32] flags(8)
                          libraryDescription[32] libraryVersion(2)
CK_SLOT_INFO       108 B  slotDescription[64] manufacturerID[32] flags(8)
                          hardwareVersion(2) firmwareVersion(2)
CK_TOKEN_INFO      204 B  label[32] manufacturerID[32] model[16] serialNumber[16]
                          flags(8) ten CK_ULONG counters(80) hardwareVersion(2)
                          firmwareVersion(2) utcTime[16]
CK_MECHANISM_INFO   24 B  ulMinKeySize(8) ulMaxKeySize(8) flags(8)
=================  =====  =======================================================

The token: one slot (:data:`SLOT_ID`) holding one token, keykeeper itself; its
mechanisms (:data:`MECHANISMS`) are the ones keykeeper's KMIP operations perform under
the default algorithm policy (crypto/registry.py, crypto/raw.py, kmip/keywrap.py). Key
sizes are in bytes for AES and HMAC keys, in bits for RSA and EC keys, as PKCS#11's
mechanism specification gives them.
"""

from __future__ import annotations

import struct
from typing import Final

from pkcs11.constants import MechanismFlag, SlotFlag, TokenFlag
from pkcs11.mechanisms import Mechanism

from keykeeper import __version__

__all__ = [
    "CRYPTOKI_VERSION",
    "LIBRARY_DESCRIPTION",
    "MANUFACTURER",
    "MECHANISMS",
    "SLOT_ID",
    "ArgumentsBad",
    "ck_info",
    "ck_slot_info",
    "ck_token_info",
    "mechanism_info",
    "mechanism_list",
    "package_version",
    "read_bool",
    "read_ulongs",
    "slot_list",
]

MANUFACTURER: Final = "keykeeper"
LIBRARY_DESCRIPTION: Final = "keykeeper KMIP PKCS#11"
SLOT_DESCRIPTION: Final = "keykeeper KMIP server"
MODEL: Final = "KMIP"
SERIAL_NUMBER: Final = "1"
SLOT_ID: Final = 1
# KMIP 2.1 §6.1.37: without a PKCS#11 Interface the "default V3.0 interface" is meant.
CRYPTOKI_VERSION: Final = (3, 0)
CK_UNAVAILABLE_INFORMATION: Final = 0xFFFF_FFFF_FFFF_FFFF  # ~0 as an 8-byte CK_ULONG

_ULONG = struct.Struct(">Q")
_COUNT = struct.Struct(">I")

F = MechanismFlag
_CRYPT = int(F.ENCRYPT | F.DECRYPT)
_SIGN = int(F.SIGN | F.VERIFY)
_EC = int(F.EC_F_P | F.EC_NAMEDCURVE | F.EC_UNCOMPRESS)

MECHANISMS: Final[dict[int, tuple[int, int, int]]] = {
    # mechanism: (ulMinKeySize, ulMaxKeySize, flags)
    Mechanism.AES_KEY_GEN: (16, 32, int(F.GENERATE)),
    Mechanism.AES_CBC: (16, 32, _CRYPT),
    Mechanism.AES_CBC_PAD: (16, 32, _CRYPT),
    Mechanism.AES_CTR: (16, 32, _CRYPT),
    Mechanism.AES_GCM: (16, 32, _CRYPT),
    Mechanism.AES_KEY_WRAP: (32, 32, int(F.WRAP)),        # Get, Key Wrapping Specification
    Mechanism.AES_KEY_WRAP_KWP: (32, 32, int(F.WRAP)),
    Mechanism.RSA_PKCS_KEY_PAIR_GEN: (3072, 4096, int(F.GENERATE_KEY_PAIR)),
    Mechanism.RSA_PKCS_OAEP: (3072, 4096, _CRYPT | int(F.WRAP)),
    Mechanism.SHA256_RSA_PKCS: (3072, 4096, _SIGN),
    Mechanism.SHA256_RSA_PKCS_PSS: (3072, 4096, _SIGN),
    Mechanism.EC_KEY_PAIR_GEN: (256, 521, int(F.GENERATE_KEY_PAIR) | _EC),
    Mechanism.ECDSA_SHA256: (256, 521, _SIGN | _EC),
    Mechanism.ECDSA_SHA384: (256, 521, _SIGN | _EC),
    Mechanism.ECDSA_SHA512: (256, 521, _SIGN | _EC),
    Mechanism.GENERIC_SECRET_KEY_GEN: (32, 64, int(F.GENERATE)),
    Mechanism.SHA256_HMAC: (32, 64, _SIGN),
    Mechanism.SHA384_HMAC: (32, 64, _SIGN),
    Mechanism.SHA512_HMAC: (32, 64, _SIGN),
    Mechanism.SHA256: (0, 0, int(F.DIGEST)),               # Hash
    Mechanism.SHA384: (0, 0, int(F.DIGEST)),
    Mechanism.SHA512: (0, 0, int(F.DIGEST)),
}


class ArgumentsBad(ValueError):
    """Input parameters that do not decode as the function's (CKR_ARGUMENTS_BAD)."""


def package_version(text: str = __version__) -> tuple[int, int]:
    """(major, minor) of a version string such as ``0.5.0`` or ``1.2rc1`` (each part's
    leading digits, at most 255: a CK_VERSION byte); (0, 0) when unreadable."""
    parts = [*text.split("."), "0", "0"][:2]
    out = []
    for part in parts:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        out.append(min(int(digits), 255) if digits else 0)
    return out[0], out[1]


def _chars(text: str, size: int) -> bytes:
    """``text`` as a blank-padded CK_UTF8CHAR array of ``size`` bytes (ASCII only here)."""
    raw = text.encode("ascii")
    if len(raw) > size:
        raise ValueError(f"{text!r} does not fit {size} bytes")
    return raw.ljust(size, b" ")


def _version(v: tuple[int, int]) -> bytes:
    return bytes(v)


def ck_info(version: tuple[int, int] | None = None) -> bytes:
    """CK_INFO (76 bytes): Cryptoki 3.0, manufacturer ``keykeeper``, flags 0 (reserved),
    description ``keykeeper KMIP PKCS#11``, library version ``version`` (default: the
    package's major.minor)."""
    return (_version(CRYPTOKI_VERSION) + _chars(MANUFACTURER, 32) + _ULONG.pack(0)
            + _chars(LIBRARY_DESCRIPTION, 32) + _version(version or package_version()))


def slot_list() -> bytes:
    """C_GetSlotList's output: the count (4 bytes) and the one slot ID (8 bytes)."""
    return _COUNT.pack(1) + _ULONG.pack(SLOT_ID)


def ck_slot_info() -> bytes:
    """CK_SLOT_INFO (108 bytes): a present token, neither removable nor hardware."""
    v = package_version()
    return (_chars(SLOT_DESCRIPTION, 64) + _chars(MANUFACTURER, 32)
            + _ULONG.pack(int(SlotFlag.TOKEN_PRESENT)) + _version((0, 0)) + _version(v))


def ck_token_info() -> bytes:
    """CK_TOKEN_INFO (204 bytes): initialised and write-protected (nothing is created,
    changed or used through this interface: KMIP's own operations do that), no login
    (KMIP authenticates the caller), counters CK_UNAVAILABLE_INFORMATION but PIN lengths
    0, no clock (utcTime blank)."""
    flags = int(TokenFlag.TOKEN_INITIALIZED | TokenFlag.WRITE_PROTECTED)
    n = CK_UNAVAILABLE_INFORMATION
    # ulMaxSessionCount, ulSessionCount, ulMaxRwSessionCount, ulRwSessionCount,
    # ulMaxPinLen, ulMinPinLen, ulTotalPublicMemory, ulFreePublicMemory,
    # ulTotalPrivateMemory, ulFreePrivateMemory
    counters = (n, n, n, n, 0, 0, n, n, n, n)
    return (_chars(MANUFACTURER, 32) + _chars(MANUFACTURER, 32) + _chars(MODEL, 16)
            + _chars(SERIAL_NUMBER, 16) + _ULONG.pack(flags)
            + b"".join(_ULONG.pack(c) for c in counters)
            + _version((0, 0)) + _version(package_version()) + _chars("", 16))


def mechanism_list() -> bytes:
    """C_GetMechanismList's output: the count (4 bytes) and each CK_MECHANISM_TYPE (8)."""
    return _COUNT.pack(len(MECHANISMS)) + b"".join(_ULONG.pack(m) for m in MECHANISMS)


def mechanism_info(mechanism: int) -> bytes | None:
    """CK_MECHANISM_INFO (24 bytes) of ``mechanism``; None if the token has no such
    mechanism (CKR_MECHANISM_INVALID)."""
    row = MECHANISMS.get(mechanism)
    return None if row is None else b"".join(_ULONG.pack(x) for x in row)


def read_ulongs(data: bytes | None, count: int) -> tuple[int, ...]:
    """``count`` CK_ULONGs (8 bytes each, big-endian) that are all of ``data``. Raises
    ArgumentsBad for anything else (absent, shorter, longer)."""
    if data is None or len(data) != 8 * count:
        raise ArgumentsBad(f"the input parameters must be {count} CK_ULONG "
                           f"({8 * count} bytes)")
    return tuple(_ULONG.unpack_from(data, 8 * i)[0] for i in range(count))


def read_bool(data: bytes | None) -> bool:
    """One CK_BBOOL (a byte, 0 or 1) that is all of ``data``. Raises ArgumentsBad for
    anything else."""
    if data is None or len(data) != 1 or data[0] > 1:
        raise ArgumentsBad("the input parameters must be one CK_BBOOL (a byte, 0 or 1)")
    return data == b"\x01"

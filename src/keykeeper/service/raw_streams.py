"""Multi-part KMIP Encrypt and Decrypt (KMIP 2.1 §6.1.16, §6.1.11: Init Indicator, Final
Indicator, Correlation Value), mixed into :class:`keykeeper.service.raw_crypto.RawCrypto`.

The first part (Init Indicator) is checked as a single-part call -- permission, rate
limit, state and crypto-period, and for Encrypt one unit of the version's usage count --
and opens an incremental context (crypto/raw_stream.py) kept in this node's memory under
a random 16-byte Correlation Value, bound to the caller, the object and the operation.
Being incremental, every stream exposes the cipher's output to the caller before the end:
it needs both the ``encrypt`` and the ``decrypt`` permission (service/raw_crypto.py).
Every later part re-runs the permission and state checks (a key disabled or revoked
mid-stream stops it) and the Final Indicator closes it. An unknown, expired (5 minutes
idle) or foreign Correlation Value is InvalidArgument. At most 1,024 streams are open per
node; the oldest idle one is dropped beyond. Correlation state is per node: a client keeps
one connection (and so one node) for a stream.
"""

from __future__ import annotations

import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from keykeeper.crypto import raw
from keykeeper.crypto.raw_params import RawParams
from keykeeper.crypto.raw_stream import RawStream, open_stream
from keykeeper.crypto.registry import Purpose
from keykeeper.domain.keys import Key
from keykeeper.domain.states import Use
from keykeeper.errors import InvalidArgument
from keykeeper.service.context import RequestContext

__all__ = [
    "MAX_STREAMS",
    "STREAM_IDLE_SECONDS",
    "RawPart",
    "RawStreamsMixin",
    "StreamTable",
    "UnknownStream",
]

MAX_STREAMS: Final = 1024
STREAM_IDLE_SECONDS: Final = 300.0


class UnknownStream(InvalidArgument):
    """A Correlation Value this node holds no open stream for (or not the caller's)."""


@dataclass(frozen=True, slots=True)
class RawPart:
    """One part's answer: its output, the IV the server drew (first part), the tag (final
    part of a GCM encryption), the Correlation Value (every part but the final one)."""

    data: bytes
    iv: bytes | None = None
    tag: bytes | None = None
    correlation: bytes | None = None

    def __repr__(self) -> str:
        return f"RawPart({len(self.data)} bytes)"


@dataclass(slots=True)
class _Open:
    owner: str
    key_id: str
    version: int
    operation: str
    stream: RawStream
    touched: float


class StreamTable:
    """The open streams of this node, by Correlation Value (module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[bytes, _Open] = OrderedDict()

    def put(self, entry: _Open, correlation: bytes | None = None) -> bytes:
        corr = correlation or secrets.token_bytes(16)
        entry.touched = time.monotonic()
        with self._lock:
            self._open[corr] = entry
            self._open.move_to_end(corr)
            while len(self._open) > MAX_STREAMS:
                self._open.popitem(last=False)
        return corr

    def take(self, corr: bytes, owner: str, key_id: str, version: int,
             operation: str) -> _Open:
        now = time.monotonic()
        with self._lock:
            for stale in [c for c, e in self._open.items()
                          if now - e.touched > STREAM_IDLE_SECONDS]:
                del self._open[stale]
            entry = self._open.get(corr)
            if entry is None or (entry.owner, entry.key_id, entry.version,
                                 entry.operation) != (owner, key_id, version, operation):
                raise UnknownStream("no open multi-part operation has this Correlation "
                                    "Value for this object")
            del self._open[corr]
        return entry


class RawStreamsMixin(ABC):
    _streams: StreamTable

    @abstractmethod
    def _material(self, ctx: RequestContext, key_id: str, version: int, purpose: Purpose,
                  op: str, use: Use) -> tuple[Key, raw.RawKey, str, str]: ...

    @abstractmethod
    def _stream_args(self, ctx: RequestContext, key: Key, family: str, fam_alg: str,
                     params: RawParams,
                     encrypt: bool, iv: bytes | None,
                     aad: bytes | None) -> tuple[str, str, bytes | None, bool]: ...

    @abstractmethod
    def _count_one(self, key: Key, version: int) -> None: ...

    def part(self, ctx: RequestContext, operation: str, key_id: str, version: int,
             params: RawParams, data: bytes, *, correlation: bytes | None,
             final: bool, iv: bytes | None = None, aad: bytes | None = None,
             tag: bytes | None = None) -> RawPart:
        """One part of a multi-part ``operation`` (``encrypt`` or ``decrypt``): the first
        (``correlation`` None: opens the stream), a middle one, or the ``final`` one.
        InvalidArgument (UnknownStream) for a Correlation Value not open here;
        RawModeNotSupported for a mode without a multi-part form; DecryptionFailed when
        the final part of a decryption does not verify."""
        encrypt = operation == "encrypt"
        use = Use.PROTECT if encrypt else Use.PROCESS
        key, material, family, fam_alg = self._material(ctx, key_id, version,
                                                        Purpose.ENCRYPT, operation, use)
        owner = ctx.principal.name if ctx.principal is not None else ""
        if correlation is None:
            algorithm, mode, use_iv, drawn = self._stream_args(
                ctx, key, family, fam_alg, params, encrypt, iv, aad)
            stream = open_stream(material, algorithm, mode, encrypt=encrypt, iv=use_iv,
                                 padding_name=params.padding, aad=aad or b"",
                                 tag_length=params.tag_length,
                                 initial_counter=params.initial_counter or 0)
            if encrypt:
                self._count_one(key, version)
            out = stream.update(data)
            corr = self._streams.put(_Open(owner, key.id, version, operation, stream, 0.0))
            return RawPart(out, use_iv if drawn else None, None, corr)
        entry = self._streams.take(correlation, owner, key.id, version, operation)
        if final:
            out, made = entry.stream.finish(data, tag)
            return RawPart(out, None, made)
        out = entry.stream.update(data)
        return RawPart(out, correlation=self._streams.put(entry, correlation))

"""The archive: JSON Lines, written and read as a stream (docs/backup-format.md).

::

    line 1        header    {"format": "keykeeper-backup", "version": 1, "backup_id", ...}
    line 2..n+1   records   {"n": 1, "t": "<table>", "r": {column: value, ...}}
    line n+2      manifest  {"manifest": {"records", "counts", "digests", "stream_sha256"}}
    line n+3      trailer   {"signature": base64 Ed25519, "mac": base64 HMAC-SHA256}

Every line is canonical JSON (sorted keys, no whitespace, ASCII) ending in ``\\n``.
Records are numbered from 1 and come table by table in the header's ``tables`` order;
values are typed by the header's column kinds (``string``, ``int``, ``float``, ``bool``,
``datetime`` as RFC 3339, ``bytes`` as base64, ``material``: the version's material wrapped
under the backup key with its namespace and algorithm, or null). The manifest counts
and digests (SHA-256) each table's record lines and the whole stream before it; the
trailer signs and MACs the manifest line. A reader refuses anything out of place with
:class:`ArchiveInvalid`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from keykeeper.backup.errors import ArchiveInvalid

__all__ = ["FORMAT", "MAX_LINE", "VERSION", "ArchiveReader", "ArchiveWriter", "Header",
           "Material", "Record", "canonical", "decode_value", "encode_value"]

FORMAT = "keykeeper-backup"
VERSION = 1
MAX_LINE = 16 * 1024 * 1024  # bytes; a record line is a few KiB at most
KINDS = frozenset(("string", "int", "float", "bool", "datetime", "bytes", "material"))


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def b64(data: bytes) -> str:
    """Standard base64 with padding, as text."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ArchiveInvalid(f"{what} is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ArchiveInvalid(f"{what} is not valid base64") from None


def rfc3339(when: datetime) -> str:
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode_value(kind: str, value: Any) -> Any:
    """A column value as the archive holds it (None stays null)."""
    if value is None:
        return None
    if kind == "datetime":
        return rfc3339(value)
    if kind == "material":
        assert isinstance(value, Material)
        return {"namespace": value.namespace, "algorithm": value.algorithm,
                "wrapped": b64(value.wrapped)}
    if kind == "bytes":
        return b64(bytes(value))
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def decode_value(kind: str, value: Any, where: str) -> Any:
    """The Python value of an archived column value; ArchiveInvalid naming ``where``."""
    if value is None:
        return None
    ok: dict[str, type | tuple[type, ...]] = {"string": str, "int": int, "float": (int, float),
                                              "bool": bool}
    if kind in ok:
        if not isinstance(value, ok[kind]) or (kind in ("int", "float")
                                               and isinstance(value, bool)):
            raise ArchiveInvalid(f"{where} should be a {kind}")
        return float(value) if kind == "float" and isinstance(value, int | float) else value
    if kind == "datetime":
        if not isinstance(value, str):
            raise ArchiveInvalid(f"{where} should be an RFC 3339 time")
        try:
            when = datetime.fromisoformat(value)
            # In UTC, as written: a time whose UTC instant is out of range is refused here,
            # not stored to break every later read of the row.
            return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)
                    ).astimezone(UTC)
        except (ValueError, OverflowError):
            raise ArchiveInvalid(f"{where} should be an RFC 3339 time in range") from None
    if kind == "material":
        if (not isinstance(value, dict) or set(value) != {"namespace", "algorithm", "wrapped"}
                or not isinstance(value["namespace"], str)
                or not isinstance(value["algorithm"], str)):
            raise ArchiveInvalid(f"{where} should be wrapped material")
        return Material(value["namespace"], value["algorithm"],
                        unb64(value["wrapped"], where))
    return unb64(value, where)


@dataclass(frozen=True, slots=True)
class Material:
    """A version's material as archived: wrapped under the backup key, with the namespace
    and algorithm its associated data binds (keys.py, ``material_aad``)."""

    namespace: str
    algorithm: str
    wrapped: bytes


@dataclass(frozen=True)
class Header:
    """The first line, parsed. ``tables`` maps each table, in record order, to its
    ``(column, kind)`` pairs."""

    raw: dict[str, Any]
    backup_id: str
    created_at: str
    tables: dict[str, tuple[tuple[str, str], ...]]
    custody: dict[str, Any]
    signer_public: bytes
    key_check: bytes

    @staticmethod
    def parse(obj: Any) -> Header:
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ArchiveInvalid("not a keykeeper backup archive (no header)")
        if obj.get("version") != VERSION:
            raise ArchiveInvalid(f"archive format version {obj.get('version')!r} is not "
                                 f"supported (this reader knows {VERSION})")
        backup_id = obj.get("backup_id")
        if not isinstance(backup_id, str) or not backup_id:
            raise ArchiveInvalid("the header has no backup_id")
        tables: dict[str, tuple[tuple[str, str], ...]] = {}
        spec = obj.get("tables")
        if not isinstance(spec, list):
            raise ArchiveInvalid("the header's tables are malformed")
        for t in spec:
            if (not isinstance(t, dict) or not isinstance(t.get("name"), str)
                    or not isinstance(t.get("columns"), list)):
                raise ArchiveInvalid("the header's tables are malformed")
            cols = []
            for c in t["columns"]:
                if (not isinstance(c, list) or len(c) != 2 or not isinstance(c[0], str)
                        or c[1] not in KINDS):
                    raise ArchiveInvalid(f"a column of table {t['name']} is malformed")
                cols.append((c[0], c[1]))
            tables[t["name"]] = tuple(cols)
        signer = obj.get("signer")
        custody = obj.get("custody")
        if not isinstance(signer, dict) or not isinstance(custody, dict):
            raise ArchiveInvalid("the header has no signer or no custody block")
        return Header(raw=obj, backup_id=backup_id, created_at=str(obj.get("created_at")),
                      tables=tables, custody=custody,
                      signer_public=unb64(signer.get("public_key"), "the signer key"),
                      key_check=unb64(obj.get("key_check"), "the key check"))


@dataclass(frozen=True)
class Record:
    n: int
    table: str
    row: dict[str, Any]   # decoded values; a ``material`` column holds its wrapped bytes


@dataclass
class _Digests:
    counts: dict[str, int] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    stream: Any = field(default_factory=hashlib.sha256)

    def add(self, table: str, line: bytes) -> None:
        self.counts[table] = self.counts.get(table, 0) + 1
        if table not in self.tables:
            self.tables[table] = hashlib.sha256()
        self.tables[table].update(line)
        self.stream.update(line)

    def manifest(self, records: int, names: Sequence[str]) -> dict[str, Any]:
        return {"records": records,
                "counts": {t: self.counts.get(t, 0) for t in names},
                "digests": {t: (self.tables[t].hexdigest() if t in self.tables
                                else hashlib.sha256().hexdigest()) for t in names},
                "stream_sha256": self.stream.hexdigest()}


class ArchiveWriter:
    """Makes the lines of one archive, in order: :meth:`header_line`, :meth:`record` per
    row, :meth:`finish` (manifest and trailer). ``sign`` and ``mac`` take the manifest line
    and answer the Ed25519 signature and the HMAC under the backup key."""

    def __init__(self, header: dict[str, Any], sign: Any, mac: Any) -> None:
        self._header = header
        self._kinds = {t["name"]: dict(map(tuple, t["columns"])) for t in header["tables"]}
        self._order = [t["name"] for t in header["tables"]]
        self._sign, self._mac = sign, mac
        self._digests = _Digests()
        self._n = 0
        self._table_index = 0
        self._started = False

    def header_line(self) -> bytes:
        line = canonical(self._header) + b"\n"
        self._digests.stream.update(line)
        self._started = True
        return line

    def record(self, table: str, row: Mapping[str, Any]) -> bytes:
        """One record line of ``row`` (Python values, by the header's column kinds)."""
        assert self._started, "header_line first"
        index = self._order.index(table)
        assert index >= self._table_index, "tables out of the header's order"
        self._table_index = index
        kinds = self._kinds[table]
        self._n += 1
        line = canonical({"n": self._n, "t": table,
                          "r": {c: encode_value(k, row.get(c)) for c, k in kinds.items()}})
        line += b"\n"
        self._digests.add(table, line)
        return line

    @property
    def counts(self) -> dict[str, int]:
        return dict(self._digests.counts)

    def finish(self) -> bytes:
        manifest = canonical({"manifest": self._digests.manifest(self._n, self._order)})
        trailer = canonical({"signature": b64(self._sign(manifest)),
                             "mac": b64(self._mac(manifest))})
        return manifest + b"\n" + trailer + b"\n"


class ArchiveReader:
    """Reads one archive from a binary stream, checking its structure as it goes.

    ``header`` is read at construction; iterate :meth:`records` to the end, then
    ``manifest_line``, ``signature`` and ``mac`` are set, and the counts and digests have
    been checked against the manifest (ArchiveInvalid on any difference, on a truncated
    stream, or on anything after the trailer)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._line_no = 0
        self._digests = _Digests()
        first = self._next_line()
        if first is None:
            raise ArchiveInvalid("the archive is empty")
        self._digests.stream.update(first)
        self.header = Header.parse(self._json(first, "the header"))
        self.manifest_line = b""
        self.manifest: dict[str, Any] = {}
        self.signature = b""
        self.mac = b""
        self.records_read = 0

    def _next_line(self) -> bytes | None:
        line = self._stream.readline(MAX_LINE + 1)
        if not line:
            return None
        self._line_no += 1
        if len(line) > MAX_LINE:
            raise ArchiveInvalid(f"line {self._line_no} is longer than {MAX_LINE} bytes")
        if not line.endswith(b"\n"):
            raise ArchiveInvalid(f"the archive is truncated (line {self._line_no} is "
                                 "incomplete)")
        return line

    def _json(self, line: bytes, what: str) -> Any:
        try:
            return json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ArchiveInvalid(f"{what} (line {self._line_no}) is not valid JSON "
                                 "(corrupted)") from None

    def records(self) -> Iterator[Record]:
        order = list(self.header.tables)
        table_index = 0
        while True:
            line = self._next_line()
            if line is None:
                raise ArchiveInvalid(f"the archive is truncated after record "
                                     f"{self.records_read} (no manifest)")
            obj = self._json(line, f"record {self.records_read + 1}")
            if isinstance(obj, dict) and "manifest" in obj:
                self._finish(line, obj)
                return
            if not isinstance(obj, dict) or set(obj) != {"n", "t", "r"}:
                raise ArchiveInvalid(f"line {self._line_no} is not a record")
            expected = self.records_read + 1
            if obj["n"] != expected:
                raise ArchiveInvalid(f"record {obj['n']!r} is out of order (expected record "
                                     f"{expected}): the archive was re-ordered or cut")
            table = obj["t"]
            if not isinstance(table, str) or table not in self.header.tables:
                raise ArchiveInvalid(f"record {expected} names an unknown table "
                                     f"{str(table)[:64]!r}")
            index = order.index(table)
            if index < table_index:
                raise ArchiveInvalid(f"record {expected} ({table}) is out of the header's "
                                     "table order: the archive was re-ordered")
            table_index = index
            raw = obj["r"]
            kinds = self.header.tables[table]
            if not isinstance(raw, dict) or set(raw) != {c for c, _ in kinds}:
                raise ArchiveInvalid(f"record {expected} ({table}) does not have the "
                                     "header's columns")
            row = {c: decode_value(k, raw[c], f"record {expected} column {c}")
                   for c, k in kinds}
            self._digests.add(table, line)
            self.records_read = expected
            yield Record(expected, table, row)

    def _finish(self, line: bytes, obj: dict[str, Any]) -> None:
        manifest = obj["manifest"]
        if set(obj) != {"manifest"} or not isinstance(manifest, dict):
            raise ArchiveInvalid("the manifest is malformed")
        trailer_line = self._next_line()
        if trailer_line is None:
            raise ArchiveInvalid("the archive is truncated (no signature after the manifest)")
        trailer = self._json(trailer_line, "the trailer")
        if not isinstance(trailer, dict) or set(trailer) != {"signature", "mac"}:
            raise ArchiveInvalid("the trailer is malformed")
        if self._stream.read(1):
            raise ArchiveInvalid("there is data after the trailer")
        self.manifest_line = line.rstrip(b"\n")
        self.manifest = manifest
        self.signature = unb64(trailer["signature"], "the signature")
        self.mac = unb64(trailer["mac"], "the manifest MAC")
        expected = self._digests.manifest(self.records_read, list(self.header.tables))
        if not isinstance(manifest.get("counts"), dict) or not isinstance(
                manifest.get("digests"), dict):
            raise ArchiveInvalid("the manifest is malformed (no counts or digests)")
        if manifest.get("records") != expected["records"]:
            raise ArchiveInvalid(f"the manifest counts {manifest.get('records')!r} records, "
                                 f"the archive holds {expected['records']}")
        for table in self.header.tables:
            if (manifest.get("counts") or {}).get(table) != expected["counts"][table]:
                raise ArchiveInvalid(f"the manifest's count of {table} does not match the "
                                     "records")
            if (manifest.get("digests") or {}).get(table) != expected["digests"][table]:
                raise ArchiveInvalid(f"the digest of {table} does not match the manifest "
                                     "(records altered)")
        if manifest.get("stream_sha256") != expected["stream_sha256"]:
            raise ArchiveInvalid("the archive's digest does not match the manifest (header "
                                 "or records altered)")

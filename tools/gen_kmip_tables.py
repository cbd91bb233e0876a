#!/usr/bin/env python3
"""Generate src/keykeeper/kmip/ttlv/_tag_table.py and _enum_table.py (the tables behind the
hand-written lookups of tags.py and enums.py) from the KMIP specification tables saved under
tools/kmip_spec/ (see each JSON file's "source" for where it was taken from).

Usage: python tools/gen_kmip_tables.py [--check]

Deterministic: the same inputs give byte-identical outputs (sorted by value, no timestamps).
``--check`` exits 1 when the committed files differ from what would be generated.

Inputs (tools/kmip_spec/):
  kmip_1_4.json   tags, enumerations and masks of KMIP 1.4 (covers 1.0-1.4)
  kmip_2_0.json   what KMIP 2.0 added
  kmip_2_1.json   what KMIP 2.1 added
  pkcs11.json     the PKCS#11 Function / Return Code values (KMIP 2.0 defers them to PKCS#11)
  since.json      first protocol version of 1.x tags (by tag range) and of enumeration
                  values added after their tag (see its "source")

XML/JSON names follow the KMIP Profiles "Normalizing Names" rules (Profiles v1.4 §5.4.1.1,
Profiles v2.1 §5.5.1.1), implemented in :func:`xml_name`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "tools" / "kmip_spec"
OUT = ROOT / "src" / "keykeeper" / "kmip" / "ttlv"

Version = tuple[int, int]

# Enumeration tags whose values are themselves tags (KMIP 2.0 §7.2 Attribute Reference, §13 Tag).
TAG_VALUED = ("Attribute Reference", "Tag")


def xml_name(spec_name: str) -> str:
    """The normalized (XML/JSON) form of a specification name (KMIP Profiles §5.4.1.1):
    1. replace round brackets with spaces;
    2. a non-word char followed by a letter then a lower-case letter becomes a space;
    3. remaining non-word chars (except whitespace) become underscores;
    4. if the first word begins with digits, move them to the end of the first word;
    5. capitalize the first letter of each word; 6. concatenate the words."""
    s = spec_name.strip().replace("(", " ").replace(")", " ")
    s = re.sub(r"[^\w\s](?=[A-Za-z][a-z])", " ", s)
    s = re.sub(r"[^\w\s]", "_", s)
    words = s.split()
    if words:
        m = re.match(r"(\d+)(.*)", words[0])
        if m and m.group(2):
            words[0] = m.group(2) + m.group(1)
    return "".join(w[:1].upper() + w[1:] for w in words)


_DIGIT_WORDS = {"1": "ONE", "2": "TWO", "3": "THREE", "4": "FOUR", "5": "FIVE", "6": "SIX"}


def member_name(spec_name: str) -> str:
    """UPPER_SNAKE Python identifier for a specification name: "3DES" -> THREE_DES,
    "PKCS#1" -> PKCS_1, "Re-key Key Pair" -> RE_KEY_KEY_PAIR, "None" -> NONE,
    "ChaCha20Poly1305" -> CHACHA20_POLY1305."""
    s = re.sub(r"(?<=[0-9])(?=[A-Z][a-z])", "_", spec_name.strip())  # ChaCha20_Poly1305
    s = re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").upper()
    if s[:1].isdigit():
        s = _DIGIT_WORDS[s[0]] + "_" + s[1:].lstrip("_")
    return s


def class_name(spec_name: str) -> str:
    """CamelCase class name: "Cryptographic Usage Mask" -> CryptographicUsageMask."""
    return re.sub(r"[^0-9A-Za-z]", "", xml_name(spec_name))


def _int(v: Any) -> int:
    return int(v, 0) if isinstance(v, str) else int(v)


def _ver(s: str) -> Version:
    major, minor = s.split(".")
    return (int(major), int(minor))


class Tables:
    def __init__(self) -> None:
        self.tags: dict[int, str] = {}  # value -> spec name
        self.tag_since: dict[int, Version] = {}
        # enumeration spec name -> {value: (spec name, since)}
        self.enums: dict[str, dict[int, tuple[str, Version | None]]] = {}
        self.enum_tags: dict[str, list[str]] = {}
        self.enum_since: dict[str, Version] = {}
        self.masks: dict[str, dict[int, tuple[str, Version | None]]] = {}
        self.mask_tags: dict[str, list[str]] = {}
        # enumeration/mask spec name -> {older spelling: value} (accepted, never produced)
        self.aliases: dict[str, dict[str, int]] = {}

    def _rename(self, ename: str, value: int, vname: str, values: Any) -> None:
        old = values[value][0]
        if old != vname:
            self.aliases.setdefault(ename, {})[old] = value
            values[value] = (vname, values[value][1])

    def load(self, path: Path, version: Version | None) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        for name, raw in data.get("tags", {}).items():
            value = _int(raw)
            if not 0x420000 < value <= 0x42FFFF or name.strip() in ("Reserved", "(Reserved)"):
                continue
            name = " ".join(name.split())
            old = self.tags.get(value)
            if old is not None and old != name:
                raise SystemExit(f"{path.name}: tag {value:#x} is {old!r} and {_q(name)}")
            self.tags[value] = name
            if version is not None:
                self.tag_since.setdefault(value, version)
        for kind, store, tag_store in (
            ("enums", self.enums, self.enum_tags),
            ("masks", self.masks, self.mask_tags),
        ):
            for table in data.get(kind, []):
                ename = " ".join(table["name"].split())
                values = store.setdefault(ename, {})
                tags = tag_store.setdefault(ename, [])
                for t in table.get("tags", []):
                    if t not in tags:
                        tags.append(t)
                if version is not None and kind == "enums":
                    self.enum_since.setdefault(ename, version)
                for vname, raw in table.get("values", {}).items():
                    value = _int(raw)
                    vname = " ".join(vname.split())
                    if value in values:
                        self._rename(ename, value, vname, values)  # later spec's spelling
                        continue
                    values[value] = (vname, version)
        for ename, renames in data.get("renames", {}).items():
            if ename.startswith("_"):
                continue
            for raw, vname in renames.items():
                self._rename(ename, _int(raw), vname, self.enums[ename])

    def apply_since(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        ranges = sorted((_int(k), _ver(v)) for k, v in data["tag_ranges"].items())
        for tag in self.tags:
            if tag in self.tag_since:
                continue
            for last, ver in ranges:
                if tag <= last:
                    self.tag_since[tag] = ver
                    break
            else:
                raise SystemExit(f"tag {tag:#x} has no version")
        for ename, spec in data["enum_values"].items():
            values = self.enums[ename]
            for ver, listed in spec.items():
                for raw in listed:
                    value = _int(raw)
                    if value in values and values[value][1] is None:
                        values[value] = (values[value][0], _ver(ver))

    def tag_by_name(self, name: str) -> int:
        for value, tname in self.tags.items():
            if tname == name:
                return value
        raise SystemExit(f"no tag named {_q(name)}")


def _v(ver: Version) -> str:
    return f"({ver[0]}, {ver[1]})"


def _q(text: str) -> str:
    """A double-quoted Python string literal (ruff format style)."""
    return json.dumps(text)


def _hex(value: int, width: int = 8) -> str:
    return "0x" + format(value, f"0{width}X")


HEADER = '"""GENERATED by tools/gen_kmip_tables.py from tools/kmip_spec/*.json -- do not edit.\n\n'


def render_tags(t: Tables) -> str:
    out = [
        HEADER,
        "KMIP tags: KMIP 1.4 §9.1.3.1 Table 'Tag Values', KMIP 2.0/2.1 §13 Table 'Tags'.\n",
        'The lookups are in tags.py.\n"""\n\n',
        "from __future__ import annotations\n\n",
        "from enum import IntEnum\n\n",
        '__all__ = ["TAGS", "Tag"]\n\n\n',
        "class Tag(IntEnum):\n",
        '    """KMIP tags (the 3-byte tag as an int); members are the UPPER_SNAKE form of the\n',
        '    specification names."""\n\n',
    ]
    members: set[str] = set()
    for value in sorted(t.tags):
        m = member_name(t.tags[value])
        if m in members:
            raise SystemExit(f"duplicate tag member {m}")
        members.add(m)
        out.append(f"    {m} = {_hex(value, 6)}\n")
    out.append("\n\n# tag -> (specification name, XML/JSON name, first protocol version)\n")
    out.append("TAGS: dict[int, tuple[str, str, tuple[int, int]]] = {\n")
    for value in sorted(t.tags):
        name = t.tags[value]
        row = (
            f"    {_hex(value, 6)}: ({_q(name)}, {_q(xml_name(name))}, {_v(t.tag_since[value])}),\n"
        )
        if len(row) > 101:
            row = (
                f"    {_hex(value, 6)}: (\n        {_q(name)},\n        {_q(xml_name(name))},\n"
                f"        {_v(t.tag_since[value])},\n    ),\n"
            )
        out.append(row)
    out.append("}\n")
    return "".join(out)


def render_enums(t: Tables) -> str:
    out = [
        HEADER,
        "KMIP enumerations and bit masks: KMIP 1.4 §9.1.3.2-9.1.3.3, KMIP 2.0/2.1 §11-§12.\n",
        'Members are the UPPER_SNAKE form of the specification names ("3DES" -> THREE_DES,\n',
        '"PKCS#1" -> PKCS_1). The lookups are in enums.py.\n"""\n\n',
        "from __future__ import annotations\n\n",
        "from enum import IntEnum, IntFlag\n\n",
        "from keykeeper.kmip.ttlv._tag_table import Tag\n\n",
    ]
    classes: list[tuple[str, str, str, list[str], dict[int, tuple[str, Version | None]]]] = []
    for kind, store, tstore in (("enum", t.enums, t.enum_tags), ("mask", t.masks, t.mask_tags)):
        for ename in sorted(store):
            tags = [n for n in tstore[ename] if n not in TAG_VALUED]
            if not tags:
                continue
            classes.append((kind, ename, class_name(ename), tags, store[ename]))
    tables = ["ALIASES", "ENUM_TAGS", "MASK_TAGS", "TAG_VALUED", "VALUES"]
    out.append("__all__ = [\n")
    # RUF022 ("isort-style"): SCREAMING_CASE names first, then the classes
    for n in sorted([*(c[2] for c in classes), *tables], key=lambda n: (not n.isupper(), n)):
        out.append(f"    {_q(n)},\n")
    out.append("]\n")
    for kind, ename, cname, tags, values in classes:
        base = "IntEnum" if kind == "enum" else "IntFlag"
        out.append(f"\n\nclass {cname}({base}):\n")
        out.append(f'    """{ename} (tags: {", ".join(tags)})."""\n')
        if values:
            out.append("\n")
        seen: set[str] = set()
        for value in sorted(values):
            m = member_name(values[value][0])
            if m in seen:
                raise SystemExit(f"{ename}: duplicate member {m}")
            seen.add(m)
            out.append(f"    {m} = {_hex(value)}\n")
    out.append(
        "\n\n# class -> {value: (XML/JSON name, specification name, first protocol version)}\n"
    )
    out.append(
        "VALUES: dict[type[IntEnum] | type[IntFlag], "
        "dict[int, tuple[str, str, tuple[int, int]]]] = {\n"
    )
    for _kind, _ename, cname, tags, values in classes:
        first = t.tag_by_name(tags[0])
        base_since = t.tag_since[first]
        if not values:
            out.append(f"    {cname}: {{}},\n")
            continue
        out.append(f"    {cname}: {{\n")
        for value in sorted(values):
            vname, since = values[value]
            since = max(since or base_since, base_since)
            row = f"        {_hex(value)}: ({_q(xml_name(vname))}, {_q(vname)}, {_v(since)}),\n"
            if len(row) > 101:
                row = (
                    f"        {_hex(value)}: (\n            {_q(xml_name(vname))},\n"
                    f"            {_q(vname)},\n            {_v(since)},\n        ),\n"
                )
            out.append(row)
        out.append("    },\n")
    out.append("}\n")
    for label, kind, typ in (("ENUM_TAGS", "enum", "IntEnum"), ("MASK_TAGS", "mask", "IntFlag")):
        out.append(f"{label}: dict[type[{typ}], tuple[int, ...]] = {{\n")
        for k, _ename, cname, tags, _values in classes:
            if k != kind:
                continue
            tvals = ", ".join(f"Tag.{member_name(n)}" for n in tags)
            row = f"    {cname}: ({tvals}{',' if len(tags) == 1 else ''}),\n"
            if len(row) > 101:
                row = (
                    f"    {cname}: (\n"
                    + "".join(f"        Tag.{member_name(n)},\n" for n in tags)
                    + "    ),\n"
                )
            out.append(row)
        out.append("}\n")
    tv = ", ".join(f"Tag.{member_name(n)}" for n in TAG_VALUED)
    out.append(f"TAG_VALUED: frozenset[int] = frozenset(({tv}))\n")
    out.append("# older spellings (specification and XML forms) still accepted on input\n")
    out.append("ALIASES: dict[type[IntEnum] | type[IntFlag], dict[str, int]] = {\n")
    for _kind, ename, cname, _tags, _values in classes:
        aliases = t.aliases.get(ename)
        if not aliases:
            continue
        out.append(f"    {cname}: {{\n")
        for alias in sorted(aliases):
            for form in dict.fromkeys((alias, xml_name(alias))):
                out.append(f"        {_q(form)}: {_hex(aliases[alias])},\n")
        out.append("    },\n")
    out.append("}\n")
    return "".join(out)


def main() -> int:
    t = Tables()
    t.load(SPEC / "kmip_1_4.json", None)
    t.load(SPEC / "kmip_2_0.json", (2, 0))
    t.load(SPEC / "pkcs11.json", (2, 0))
    t.load(SPEC / "kmip_2_1.json", (2, 1))
    t.apply_since(SPEC / "since.json")
    files = {OUT / "_tag_table.py": render_tags(t), OUT / "_enum_table.py": render_enums(t)}
    check = "--check" in sys.argv[1:]
    stale = []
    for path, text in files.items():
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale:", *[str(p) for p in stale], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Envelope helper in constant memory: encrypt and decrypt a 1 GiB file, report peak RSS.

Starts a dev-mode keykeeper (bench/harness.py), creates an ``encrypt`` key, then runs
:func:`keykeeper.client.encrypt_stream` over a sparse 1 GiB file (its blocks are never
allocated, and nothing holds it in memory) into a ciphertext file, and
:func:`keykeeper.client.decrypt_stream` from that file into a sink that only hashes.
The SHA-256 of what went in and what came out must match.

Peak RSS is this process's ``ru_maxrss`` (the client side: the server is a separate
process and only ever sees the 32-byte data key). Target (issue): under 150 MiB.

    .venv/bin/python bench/envelope_rss.py [--size-mib 1024] [--chunk-kib 64]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, TOKEN, keykeeper_server

from keykeeper.client import Client, decrypt_stream, encrypt_stream

TARGET_MIB = 150
RESULTS = ROOT / "bench" / "results" / "envelope_rss.txt"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class HashingReader:
    """A binary reader that hashes everything read through it."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        self.sha256.update(data)
        return data


class HashingSink:
    """A binary writer that keeps only a hash and a byte count of what is written."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="plaintext size (MiB)")
    parser.add_argument("--chunk-kib", type=int, default=64, help="envelope chunk size (KiB)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    lines = [f"envelope helper, {args.size_mib:,} MiB plaintext, {args.chunk_kib} KiB chunks "
             "(bench/envelope_rss.py)"]
    baseline = peak_rss_mib()
    with tempfile.TemporaryDirectory(prefix="kk-envelope-") as tmp, keykeeper_server(1) as kk:
        plain_path = Path(tmp) / "plain.bin"
        with plain_path.open("wb") as fh:
            fh.truncate(size)                         # sparse: no blocks, no memory
        sealed_path = Path(tmp) / "plain.bin.kkenv"
        with Client(kk.url, TOKEN) as client:
            client.create_key("envelope", purpose="encrypt")
            after_setup = peak_rss_mib()
            with plain_path.open("rb") as src, sealed_path.open("wb") as dst:
                reader = HashingReader(src)
                start = time.perf_counter()
                n_in = encrypt_stream(client, "envelope", reader, dst,  # type: ignore[arg-type]
                                      context={"file": "plain.bin"},
                                      chunk_size=args.chunk_kib * 1024)
                dst.flush()
                os.fsync(dst.fileno())
                enc_s = time.perf_counter() - start
            after_encrypt = peak_rss_mib()
            sink = HashingSink()
            with sealed_path.open("rb") as src:
                start = time.perf_counter()
                n_out = decrypt_stream(client, src, sink,  # type: ignore[arg-type]
                                       context={"file": "plain.bin"})
                dec_s = time.perf_counter() - start
        after_decrypt = peak_rss_mib()
        sealed_size = sealed_path.stat().st_size
    ok = n_in == n_out == size and reader.sha256.digest() == sink.sha256.digest()
    mib = size / 2**20
    lines += [
        f"ciphertext file  {sealed_size:,} bytes ({sealed_size - size:,} bytes of header "
        "and tags)",
        f"encrypt          {enc_s:7.2f} s  {mib / enc_s:8.1f} MiB/s  (incl. fsync of the "
        "output)",
        f"decrypt          {dec_s:7.2f} s  {mib / dec_s:8.1f} MiB/s  (into a hashing sink)",
        f"round trip       {'SHA-256 matches' if ok else 'MISMATCH'}",
        f"peak RSS         {baseline:7.1f} MiB after imports, {after_setup:.1f} after "
        f"connecting, {after_encrypt:.1f} after encrypt, {after_decrypt:.1f} after decrypt",
        f"target           peak RSS < {TARGET_MIB} MiB: "
        f"{'PASS' if after_decrypt < TARGET_MIB and ok else 'FAIL'}",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

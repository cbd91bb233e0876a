"""The dev server leaves nothing behind: its temporary data directory (which holds the
plain-text unseal passphrase) is removed when it stops, by Ctrl-C or by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_dev_data_directory_is_removed_when_the_server_stops(how: signal.Signals) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "keykeeper", "server", "--dev", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "KEYKEEPER_AUDIT_SINKS": "file:required"})
    try:
        assert proc.stderr is not None
        data_dir: Path | None = None
        deadline = time.monotonic() + 30
        while data_dir is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            found = re.search(r"Data dir:\s+(\S+)", line)
            if found:
                data_dir = Path(found.group(1))
        assert data_dir is not None and data_dir.is_dir()
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/sys/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert (data_dir / "dev-unseal-passphrase").exists()
        proc.send_signal(how)
        proc.wait(timeout=30)
        assert not data_dir.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

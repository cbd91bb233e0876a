"""SoftHSM2 tokens for the PKCS#11 tests (Debian's ``softhsm2``, installed by .ci/run).

SoftHSM reads ``SOFTHSM2_CONF`` once, when the library is first initialised in a
process, so :func:`softhsm_dir` points it at one temporary token directory per test
process (each xdist worker has its own) before anything loads the library; server
subprocesses inherit the variable. Each test makes its own token with a unique label.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "so-pin-12345678"
_dir: Path | None = None


def softhsm_missing() -> str | None:
    """None when SoftHSM2 is installed, else why the PKCS#11 tests are skipped."""
    if not Path(LIBRARY).exists() or shutil.which("softhsm2-util") is None:
        return "SoftHSM2 is not installed (Debian package softhsm2; scripts/ensure-softhsm.sh)"
    return None


def softhsm_dir() -> Path:
    """This process's token directory, with ``SOFTHSM2_CONF`` set to its config."""
    global _dir
    if _dir is None:
        _dir = Path(tempfile.mkdtemp(prefix="kk-softhsm-"))
        (_dir / "tokens").mkdir()
        conf = _dir / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {_dir / 'tokens'}\n"
                        "objectstore.backend = file\nlog.level = ERROR\n"
                        "slots.removable = false\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
    return _dir


@dataclass(frozen=True)
class SoftToken:
    """A fresh initialised token: its label, serial and user PIN."""

    label: str
    pin: str
    serial: str
    pin_file: Path

    @property
    def env(self) -> dict[str, str]:
        """The server settings that select this token (PIN from a file)."""
        return {"KEYKEEPER_PKCS11_LIBRARY": LIBRARY, "KEYKEEPER_PKCS11_TOKEN_LABEL": self.label,
                "KEYKEEPER_PKCS11_PIN_FILE": str(self.pin_file),
                "SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"]}


def new_token(label: str | None = None) -> SoftToken:
    """Initialise a token in a free slot (softhsm2-util --init-token --free)."""
    missing = softhsm_missing()
    if missing:
        pytest.skip(missing)
    directory = softhsm_dir()
    label = label or "kk-" + secrets.token_hex(6)
    pin = secrets.token_hex(8)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                    "--so-pin", SO_PIN, "--pin", pin], check=True, capture_output=True,
                   env=os.environ.copy())
    out = subprocess.run(["softhsm2-util", "--show-slots"], check=True, capture_output=True,
                         text=True).stdout
    serial = ""
    block: list[str] = []
    for line in [*out.splitlines(), "Slot end"]:
        if line.startswith("Slot ") and block:
            text = "\n".join(block)
            if f"Label:            {label}" in text or f"Label: {label}" in text:
                for b in block:
                    if "Serial number:" in b:
                        serial = b.split(":", 1)[1].strip()
            block = []
        block.append(line)
    pin_file = directory / f"{label}.pin"
    pin_file.write_text(pin + "\n")
    pin_file.chmod(0o600)
    # SoftHSM reads its token directory at C_Initialize: finalize and initialize the library
    # again so this process sees the new token whatever ran before (this closes every
    # session the process had, so make tokens before opening sessions in a test).
    import pkcs11

    pkcs11.lib(LIBRARY).reinitialize()
    return SoftToken(label=label, pin=pin, serial=serial, pin_file=pin_file)


@pytest.fixture
def soft_token() -> SoftToken:
    """A fresh SoftHSM2 token for one test (skipped with the reason if SoftHSM is absent)."""
    return new_token()

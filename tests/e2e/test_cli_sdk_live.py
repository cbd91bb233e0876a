"""The CLI and the SDK against a real server, as the README shows them."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from keykeeper.client import Client, decrypt_stream, encrypt_stream
from keykeeper.errors import DecryptionFailed, FailedPrecondition, NotFound, Unauthenticated
from tests.support.server import ServerProcess

KEYKEEPER = [sys.executable, "-m", "keykeeper"]


def cli(server: ServerProcess, *args: str, stdin: bytes | None = None,
        token: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "KEYKEEPER_ADDR": server.addr,
           "KEYKEEPER_TOKEN": server.root_token if token is None else token}
    return subprocess.run([*KEYKEEPER, *args], input=stdin, capture_output=True, env=env,
                          timeout=60, check=False)


def ok(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_readme_cli_tour(live_server: ServerProcess, tmp_path: Path) -> None:
    orders, releases = "orders-" + secrets.token_hex(3), "releases-" + secrets.token_hex(3)
    ok(cli(live_server, "key", "create", orders))
    ct = ok(cli(live_server, "encrypt", orders, "--plaintext", "4242",
                "--context", "tenant=acme")).strip()
    assert ct.startswith("keykeeper:v1:")
    assert ok(cli(live_server, "decrypt", orders, ct, "--context", "tenant=acme")) == "4242"
    ok(cli(live_server, "key", "rotate", orders))
    versions = ok(cli(live_server, "--format", "json", "key", "versions", orders))
    assert '"version": 2' in versions or '"version":2' in versions
    assert ok(cli(live_server, "decrypt", orders, ct, "--context", "tenant=acme")) == "4242"

    artefact = tmp_path / "release.tar.gz"
    artefact.write_bytes(os.urandom(5000))
    ok(cli(live_server, "key", "create", releases, "--algorithm", "ML_DSA_65"))
    sig = ok(cli(live_server, "sign", releases, "--in", str(artefact))).strip()
    ok(cli(live_server, "verify", releases, sig, "--in", str(artefact)))
    artefact.write_bytes(b"tampered")
    bad = cli(live_server, "verify", releases, sig, "--in", str(artefact))
    assert bad.returncode == 1
    pem = ok(cli(live_server, "public-key", releases))
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")

    backup = tmp_path / "backup.tar"
    backup.write_bytes(os.urandom(200_000))
    ok(cli(live_server, "encrypt-file", orders, str(backup), "--out", str(tmp_path / "b.kk")))
    ok(cli(live_server, "decrypt-file", str(tmp_path / "b.kk"), "--out", str(tmp_path / "out")))
    assert (tmp_path / "out").read_bytes() == backup.read_bytes()
    listing = ok(cli(live_server, "key", "list", "--format", "json"))
    assert orders in listing and releases in listing


def test_cli_errors_are_one_line(live_server: ServerProcess) -> None:
    r = cli(live_server, "encrypt", "no-such-key", "--plaintext", "x")
    assert r.returncode == 1
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: not_found")
    r = cli(live_server, "key", "list", token="kk.wrong")
    assert r.returncode == 1 and "unauthenticated" in r.stderr.decode()
    assert "Traceback" not in r.stderr.decode()


def test_sdk_round_trip_and_errors(live_server: ServerProcess) -> None:
    name = "sdk-" + secrets.token_hex(3)
    with Client(live_server.addr, token=live_server.root_token) as kk:
        key = kk.create_key(name, purpose="encrypt", labels={"app": "sdk"})
        assert key.primary_version == 1
        enc = kk.encrypt(name, b"4242", context={"tenant": "acme"})
        assert kk.decrypt(name, enc.ciphertext, context={"tenant": "acme"}).plaintext == b"4242"
        with pytest.raises(DecryptionFailed):
            kk.decrypt(name, enc.ciphertext, context={"tenant": "other"})
        results = kk.encrypt_batch(name, [b"a", b"", b"c"])
        assert len(results) == 3
        assert any(k.name == name for k in kk.iter_keys(labels={"app": "sdk"}))
        dk = kk.generate_data_key(name)
        assert dk.plaintext is not None and len(dk.plaintext) == 32
        assert "plaintext" not in repr(dk) or dk.plaintext.hex() not in repr(dk)
        kk.disable_key(name)
        with pytest.raises(FailedPrecondition):
            kk.encrypt(name, b"x")
        with pytest.raises(NotFound):
            kk.get_key("missing-" + name)
    with Client(live_server.addr, token="kk.bad") as bad, pytest.raises(Unauthenticated):
        bad.list_keys()


def test_envelope_stream_through_server(live_server: ServerProcess) -> None:
    name = "env-" + secrets.token_hex(3)
    data = os.urandom(3 * 65536 + 17)
    with Client(live_server.addr, token=live_server.root_token) as kk:
        kk.create_key(name)
        sealed = io.BytesIO()
        encrypt_stream(kk, name, io.BytesIO(data), sealed, context={"file": "a"})
        out = io.BytesIO()
        decrypt_stream(kk, io.BytesIO(sealed.getvalue()), out, context={"file": "a"})
        assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(data).digest()
        with pytest.raises(DecryptionFailed):
            decrypt_stream(kk, io.BytesIO(sealed.getvalue()), io.BytesIO(),
                           context={"file": "b"})
        truncated = sealed.getvalue()[:-100]
        with pytest.raises(DecryptionFailed):
            decrypt_stream(kk, io.BytesIO(truncated), io.BytesIO(), context={"file": "a"})


def test_cli_bad_address_and_passphrase_file(live_server: ServerProcess, tmp_path: Path) -> None:
    env = {**os.environ, "KEYKEEPER_ADDR": "http://[::1", "KEYKEEPER_TOKEN": "x"}
    r = subprocess.run([*KEYKEEPER, "key", "list"], capture_output=True, env=env, timeout=60,
                       check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr.decode()
    assert len(r.stderr.decode().strip().splitlines()) == 1
    bad = tmp_path / "pass"
    bad.write_bytes(b"\xff\xfe\x00")
    r = cli(live_server, "unseal", "--passphrase-file", str(bad))
    assert r.returncode != 0 and "Traceback" not in r.stderr.decode()
    assert "UTF-8" in r.stderr.decode()

"""encrypt-file / decrypt-file through the CLI against a fake data-key service."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import httpx
from typer.testing import CliRunner

from keykeeper.cli._state import State
from keykeeper.cli.main import app


class FakeServer:
    """Answers data-key and decrypt like a server would; wraps keys insecurely (test only)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        body = json.loads(request.content)
        ctx = json.dumps(body.get("context") or {}, sort_keys=True)
        if request.url.path.endswith("/data-key"):
            raw = os.urandom(32)
            wrapped = "keykeeper:v1:k_01:1:" + base64.b64encode(raw + ctx.encode()).decode()
            return httpx.Response(
                200,
                json={
                    "ciphertext": wrapped,
                    "key_version": 1,
                    "plaintext": base64.b64encode(raw).decode(),
                },
            )
        if request.url.path == "/v1/keys/k_01/decrypt":
            blob = base64.b64decode(body["ciphertext"].split(":")[4])
            if blob[32:] != ctx.encode():
                return httpx.Response(
                    400,
                    headers={"content-type": "application/problem+json"},
                    content=json.dumps(
                        {"code": "decryption_failed", "status": 400, "detail": "x"}
                    ).encode(),
                )
            return httpx.Response(
                200, json={"plaintext": base64.b64encode(blob[:32]).decode(), "key_version": 1}
            )
        return httpx.Response(404, json={"code": "not_found", "detail": "no route"})


def run(server: FakeServer, args: list[str], input: bytes | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        app, args, input=input, obj=State(transport=httpx.MockTransport(server))
    )


def test_file_round_trip(tmp_path: Path) -> None:
    server = FakeServer()
    src, enc, dec = tmp_path / "a.bin", tmp_path / "a.kk", tmp_path / "a.out"
    data = os.urandom(200_000)
    src.write_bytes(data)
    res = run(
        server,
        [
            "encrypt-file",
            "files",
            str(src),
            "-o",
            str(enc),
            "--context",
            "f=a",
            "--chunk-size",
            "4096",
        ],
    )
    assert res.exit_code == 0, res.output
    assert enc.read_bytes()[:6] == b"KKENV1"
    res = run(
        server, ["--format", "json", "decrypt-file", str(enc), "-o", str(dec), "--context", "f=a"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"out": str(dec), "plaintext_bytes": len(data)}
    assert dec.read_bytes() == data
    assert server.paths == ["/v1/keys/files/data-key", "/v1/keys/k_01/decrypt"]
    assert not list(tmp_path.glob("*.partial"))


def test_pipes(tmp_path: Path) -> None:
    server = FakeServer()
    res = run(server, ["encrypt-file", "files"], input=b"hello pipe")
    assert res.exit_code == 0
    res2 = run(server, ["decrypt-file"], input=res.stdout_bytes)
    assert res2.exit_code == 0 and res2.stdout_bytes == b"hello pipe"


def test_tampered_file_leaves_no_output(tmp_path: Path) -> None:
    server = FakeServer()
    src, enc, dec = tmp_path / "a.bin", tmp_path / "a.kk", tmp_path / "a.out"
    src.write_bytes(os.urandom(10_000))
    assert (
        run(
            server, ["encrypt-file", "files", str(src), "-o", str(enc), "--chunk-size", "1024"]
        ).exit_code
        == 0
    )
    blob = bytearray(enc.read_bytes())
    blob[-5] ^= 1  # last chunk: the earlier chunks verify and are written first
    enc.write_bytes(bytes(blob))
    res = run(server, ["decrypt-file", str(enc), "-o", str(dec)])
    assert res.exit_code == 1
    assert res.stderr == "error: decryption_failed: decryption failed\n"
    assert not dec.exists()
    assert sorted(tmp_path.iterdir()) == sorted([src, enc])  # no .partial left behind


def test_wrong_context_and_stdout_warning(tmp_path: Path) -> None:
    server = FakeServer()
    res = run(server, ["encrypt-file", "files", "--context", "a=1"], input=b"x" * 100)
    res2 = run(server, ["decrypt-file", "--context", "a=2"], input=res.stdout_bytes)
    assert res2.exit_code == 1
    assert res2.stderr.startswith("error: decryption_failed: decryption failed (discard")
    assert res2.stderr.count("\n") == 1


def test_refuses_to_overwrite_and_missing_input(tmp_path: Path) -> None:
    server = FakeServer()
    src, out = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"1")
    out.write_bytes(b"keep")
    assert run(server, ["encrypt-file", "files", str(src), "-o", str(out)]).exit_code == 2
    assert out.read_bytes() == b"keep"
    assert (
        run(server, ["encrypt-file", "files", str(src), "-o", str(out), "--force"]).exit_code == 0
    )
    assert out.read_bytes()[:6] == b"KKENV1"
    assert run(server, ["encrypt-file", "files", str(tmp_path / "nope")]).exit_code == 2
    assert server.paths == ["/v1/keys/files/data-key"]


def test_not_an_envelope(tmp_path: Path) -> None:
    server = FakeServer()
    res = run(server, ["decrypt-file"], input=b"just some text")
    assert res.exit_code == 1 and "decryption_failed" in res.stderr
    assert server.paths == []

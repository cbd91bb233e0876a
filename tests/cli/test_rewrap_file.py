"""``keykeeper rewrap --in FILE``: --out may not be the input; the output is replaced only
when the run ends (never half-written); input is read in bytes, a line at a time, with a
cap, so an over-long or non-UTF-8 line is that line's error and memory stays bounded."""

from __future__ import annotations

import json
import secrets
import tracemalloc
from pathlib import Path

from typer.testing import CliRunner, Result

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from tests.support.server import ServerProcess, b64

MAX_LINE = 1024 * 1024            # the documented cap of one input line (cli/rewrap_cmds.py)
NOWHERE = "http://127.0.0.1:9"    # nothing listens: a real refused connection


def cli(*args: str, addr: str = NOWHERE, token: str = "tok", stdin: bytes | None = None
        ) -> Result:
    env = {"KEYKEEPER_ADDR": addr, "KEYKEEPER_TOKEN": token}
    return CliRunner().invoke(app, list(args), env=env, obj=State(), input=stdin)


def _one_line(res: Result) -> str:
    assert "Traceback" not in res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_out_same_as_in_is_refused_and_the_input_kept(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    content = b'"keykeeper:v1:k-1:1:abc"\n'
    src.write_bytes(content)
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    for out in (str(src), str(tmp_path / "." / "in.jsonl"), str(link)):
        res = cli("rewrap", "--in", str(src), "--out", out)
        assert res.exit_code == 2, (out, res.stderr)
        assert _one_line(res).startswith("error: usage: --out"), res.stderr
        assert src.read_bytes() == content


def test_an_interrupted_run_leaves_the_old_output_and_no_temporary_file(
        tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    # Line 1 fails locally (written), line 2 needs the server, which cannot be reached:
    # a fatal error that stops the run half-way.
    src.write_bytes(b"not json\n" + json.dumps("keykeeper:v1:k-" + "1" * 32 + ":1:AAAA")
                    .encode() + b"\n")
    out.write_bytes(b"previous answers\n")
    res = cli("rewrap", "--in", str(src), "--out", str(out))
    assert res.exit_code == 3, res.stderr
    assert _one_line(res).startswith("error: unavailable:"), res.stderr
    assert out.read_bytes() == b"previous answers\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_bad_lines_complete_the_output_file(tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"[1]\n\xff\xfe\n")
    res = cli("rewrap", "--in", str(src), "--out", str(out))
    assert res.exit_code == 1 and "2 of 2 line(s) failed" in res.stderr
    assert [json.loads(x)["line"] for x in out.read_text().splitlines()] == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_a_50_mb_line_is_its_own_error_in_bounded_memory(tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    with src.open("wb") as f:
        f.write(b'"' + b"A" * (50 * 1024 * 1024) + b'"\n')
        f.write(b"[" * 200_000 + b"]" * 200_000 + b"\n")   # too deep for json: its own error
        f.write(b'{"x": 1}')                                 # last line, no newline
    warm = tmp_path / "warm.jsonl"
    warm.write_bytes(b"[]\n")
    cli("rewrap", "--in", str(warm), "--out", str(out))   # first-use imports, TLS setup
    tracemalloc.start()
    try:
        res = cli("rewrap", "--in", str(src), "--out", str(out))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.exit_code == 1, res.stderr
    assert peak < 4 * MAX_LINE, f"peak {peak / 2**20:.1f} MiB"
    answers = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(a["line"], a["error"]["code"]) for a in answers] == [
        (1, "invalid_argument"), (2, "invalid_argument"), (3, "invalid_argument")]
    assert answers[0]["error"]["detail"] == f"line longer than {MAX_LINE} bytes"
    assert answers[1]["error"]["detail"] == "not a JSON value"


def test_mixed_lines_against_a_live_server(live_server: ServerProcess, tmp_path: Path) -> None:
    s = live_server
    key = s.create_key(f"rwcap-{secrets.token_hex(4)}")["id"]
    r = s.post(f"/v1/keys/{key}/encrypt", {"plaintext": b64(b"hello")})
    assert r.status_code == 200, r.text
    good = json.dumps(r.json()["ciphertext"]).encode()
    assert s.post(f"/v1/keys/{key}/rotate").status_code == 200
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(good + b"\n"
                    + b'"' + b"B" * (MAX_LINE + 10) + b'"\n'
                    + b'"caf\xe9"\n'                          # Latin-1, not UTF-8
                    + b"\n"
                    + good + b"\r\n"
                    + b"A" * MAX_LINE + b"\n")               # exactly the cap: read, parsed
    res = cli("rewrap", "--in", str(src), "--out", str(out), addr=s.addr, token=s.root_token)
    assert res.exit_code == 1 and "3 of 5 line(s) failed" in res.stderr, res.stderr
    answers = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(a["line"], a.get("error", {}).get("detail"), a.get("key_version"))
            for a in answers] == [
        (1, None, 2),
        (2, f"line longer than {MAX_LINE} bytes", None),
        (3, "not UTF-8 text (byte 5 of the line)", None),
        (5, None, 2),
        (6, "not a JSON value", None)]


def test_stdin_in_binary_and_stdout(tmp_path: Path) -> None:
    res = cli("rewrap", "--in", "-", stdin=b"\xff\n[]\n")
    assert res.exit_code == 1
    answers = [json.loads(x) for x in res.stdout.splitlines()]
    assert [a["line"] for a in answers] == [1, 2]
    assert answers[0]["error"]["detail"] == "not UTF-8 text (byte 1 of the line)"


def test_out_keeps_the_mode_of_the_file_it_replaces_and_may_not_be_a_directory(
        tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"[]\n")
    out.write_bytes(b"old\n")
    out.chmod(0o640)
    assert cli("rewrap", "--in", str(src), "--out", str(out)).exit_code == 1
    assert out.stat().st_mode & 0o777 == 0o640 and json.loads(out.read_text())["line"] == 1
    res = cli("rewrap", "--in", str(src), "--out", str(tmp_path))
    assert res.exit_code == 2 and _one_line(res).endswith("is a directory"), res.stderr


def test_out_through_a_symlink_or_to_a_fifo_is_never_replaced_by_a_regular_file(
        tmp_path: Path) -> None:
    import os
    import stat
    import threading

    src = tmp_path / "in.jsonl"
    src.write_bytes(b"[1]\n")                   # one bad line: an answer line, no server
    target, link = tmp_path / "target.jsonl", tmp_path / "link.jsonl"
    target.write_bytes(b"old\n")
    link.symlink_to(target)
    res = cli("rewrap", "--in", str(src), "--out", str(link))
    assert res.exit_code == 1, res.stderr
    assert link.is_symlink() and json.loads(target.read_text())["line"] == 1

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    res = cli("rewrap", "--in", str(src), "--out", str(fifo))
    reader.join(10)
    assert res.exit_code == 1, res.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)        # still a FIFO, not a regular file
    assert json.loads(got[0])["line"] == 1

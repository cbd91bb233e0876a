"""A real keykeeper server in a subprocess (uvicorn), driven over HTTP."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


class ServerProcess:
    def __init__(self, *, data_dir: Path, database_url: str, backend: str = "sqlite",
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.backend = backend
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.root_token = ""
        self.passphrase = ""
        self.http = httpx.Client(base_url=self.addr, timeout=30.0)

    def start(self) -> None:
        env = {**os.environ, **self.extra_env}
        code = ("from keykeeper.config import run_server; "
                f"run_server(listen='127.0.0.1:{self.port}', data_dir={str(self.data_dir)!r}, "
                f"database_url={self.database_url!r})")
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + (self.data_dir / "server.log").read_text())
            try:
                if self.http.get("/v1/sys/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start: " + (self.data_dir / "server.log").read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def init_and_unseal(self) -> None:
        r = self.http.post("/v1/sys/init", json={})
        assert r.status_code == 200, r.text
        self.root_token = r.json()["root_token"]
        self.passphrase = r.json()["unseal_passphrase"]
        self.unseal()

    def unseal(self) -> None:
        r = self.http.post("/v1/sys/unseal", json={"passphrase": self.passphrase})
        assert r.status_code == 200 and r.json()["sealed"] is False, r.text

    def request(self, method: str, path: str, json: Any = None, *, token: str | None = None,
                content: bytes | None = None, headers: dict[str, str] | None = None,
                ) -> httpx.Response:
        token = self.root_token if token is None else token
        hdrs = {"Authorization": f"Bearer {token}"} if token else {}
        hdrs.update(headers or {})
        return self.http.request(method, path, json=json, content=content, headers=hdrs)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json if json is not None else {}, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def create_key(self, name: str, **fields: Any) -> dict[str, Any]:
        r = self.post("/v1/keys", {"name": name, **fields})
        assert r.status_code == 201, r.text
        return dict(r.json())

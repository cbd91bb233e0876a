"""Serve a reference app of bench/ceiling_app.py the way keykeeper's server runs uvicorn.

    python bench/serve_reference.py ceiling_app:app PORT WORKERS [--nodelay]

Same settings as ``keykeeper.config.run_server``: log level warning, no access log, no
server header. With more than one worker uvicorn binds the listening socket itself
(``Config.bind_socket``) with ``proto`` 0, so asyncio never turns on TCP_NODELAY for
accepted connections and each keep-alive response waits for the client's delayed ACK
(about 40 ms on Linux; uvicorn issue #3149). ``--nodelay`` sets TCP_NODELAY on the
listening socket, which Linux copies to every accepted socket: the fixed ceiling.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("app")
    parser.add_argument("port", type=int)
    parser.add_argument("workers", type=int)
    parser.add_argument("--nodelay", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    config = uvicorn.Config(args.app, host="127.0.0.1", port=args.port, workers=args.workers,
                            log_level="warning", access_log=False, server_header=False)
    if args.workers == 1:
        uvicorn.Server(config).run()
        return
    sock = config.bind_socket()
    if args.nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[sock]).run()


if __name__ == "__main__":
    main()

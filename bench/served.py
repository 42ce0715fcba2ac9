"""N requests to /healthz against a ``BackgroundServer`` in this process, for callgrind to count:
the serving protocol's own cost (``cli/coalescing.py``, ``cli/tls.py``), which
``bench/inprocess.py`` does not run.

usage: python bench/served.py keep|close N [CERT KEY]
  keep: N requests on one keep-alive connection; close: each on a new connection;
  CERT KEY: over TLS (a certificate for 127.0.0.1 or localhost, and its key).
Count as bench/instructions.sh does, (count for 516 - count for 16) / 500, e.g.:
  valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python bench/served.py keep 516
The server and the client are two threads of one process, so counts vary by a few per cent.
"""

from __future__ import annotations

import socket
import ssl
import sys
import tempfile
from pathlib import Path

from provisor.cli.serving import BackgroundServer
from provisor.server import ServerConfig, create_app
from provisor.store.sql import SqlStore

CLOSE = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
KEEP = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def main(mode: str, n: int, cert: str | None = None, key: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{Path(tmp) / 'served.db'}")
        app = create_app(store, ServerConfig(access_log=False))
        server = BackgroundServer(app, tls_cert=cert, tls_key=key).start()
        context = ssl.create_default_context(cafile=cert) if cert else None
        if context is not None:
            context.check_hostname = False  # the certificate's name is not the test's concern

        def connect() -> socket.socket:
            raw = socket.create_connection(("127.0.0.1", server.port))
            return context.wrap_socket(raw) if context else raw

        try:
            if mode == "close":
                for _ in range(n):
                    with connect() as s:
                        s.sendall(CLOSE)
                        while s.recv(65536):
                            pass
            else:
                with connect() as s:
                    for _ in range(n):
                        s.sendall(KEEP)
                        answer = b""
                        while not answer.endswith(b"}"):
                            answer += s.recv(65536)
        finally:
            server.stop()
            store.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:5])

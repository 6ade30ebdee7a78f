"""A TCP proxy in front of the real Elasticsearch that injects network faults (as toxiproxy does): it can go
down (new connections refused, open ones cut) and come back on the same port, and it runs an action just
before it forwards the n-th bulk request, so a fault lands mid-crawl at a chosen point, not at a moment
guessed with a sleep. Nothing of Elasticsearch's protocol is imitated: every byte that passes is the real
server's."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable

_BULK = re.compile(rb"^(?:POST|PUT) [^ \r\n]*_bulk[^ \r\n]* HTTP/1\.[01]\r?$", re.MULTILINE)
# What happens before the n-th bulk request is forwarded: "down" cuts it (and the proxy goes down); anything
# else (e.g. a block set on the indices) is done by the callable, and the request goes on.
Action = Callable[[], str | None]


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.bulks = 0
        self._actions: dict[int, Action] = {}
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def before_bulk(self, n: int, action: Action) -> None:
        """Run ``action`` just before the ``n``-th bulk request (counted from 1) is forwarded."""
        self._actions[n] = action

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            listener.close()
        for conn in conns:
            _close(conn)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(server)
                    return
                self._conns |= {client, server}
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        try:
            while data := src.recv(65536):
                if requests and not self._before_forwarding(data):
                    break
                dst.sendall(data)
        except OSError:
            pass
        _close(src)
        _close(dst)

    def _before_forwarding(self, data: bytes) -> bool:
        """Count bulk requests and run their actions; False: cut this connection."""
        for _ in _BULK.finditer(data):
            with self._lock:
                self.bulks += 1
                action = self._actions.pop(self.bulks, None)
            if action is not None and action() == "down":
                self.down()
                return False
        return True

    def close(self) -> None:
        self.down()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()

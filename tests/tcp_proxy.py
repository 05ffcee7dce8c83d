"""A TCP proxy in front of a server, for tests that make the server go away.

``FaultyProxy`` forwards every connection to the server. A test can make it
go away (every connection cut, new ones closed at once) and come back, or cut
the connection whose client sends a given marker (the server's name of an
insert): before the message reaches the server, or after the server has
answered, losing the answer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

CHUNK = 65536


class FaultyProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._gone = False
        self._marker: bytes | None = None
        self._deliver = False
        self._then_go_away = False
        self.cuts = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def go_away(self) -> None:
        """Cut every connection; close new ones at once."""
        with self._lock:
            self._gone = True
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)

    def come_back(self) -> None:
        with self._lock:
            self._gone = False

    def cut_at(self, marker: bytes, deliver: bool = False, then_go_away: bool = False) -> None:
        """Cut the next connection whose client sends ``marker``: before the
        message reaches the server, or (``deliver``) once the server has
        answered it, dropping the answer. With ``then_go_away``, the proxy
        goes away at that moment too."""
        with self._lock:
            self._marker = marker
            self._deliver = deliver
            self._then_go_away = then_go_away

    def close(self) -> None:
        self._closed.set()
        _close(self._listener)
        self.go_away()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                gone = self._gone
            if gone:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, server))
            pair = _Pair(self, client, server)
            threading.Thread(target=pair.upstream, daemon=True).start()
            threading.Thread(target=pair.downstream, daemon=True).start()

    def _take_cut(self, data: bytes) -> tuple[bool, bool] | None:
        """(deliver, then go away) when ``data`` is the message to cut at."""
        with self._lock:
            if self._marker is None or self._marker not in data:
                return None
            self._marker = None
            self.cuts += 1
            return self._deliver, self._then_go_away

    def _forget(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.difference_update(sockets)
        for sock in sockets:
            _close(sock)


class _Pair:
    """One client's connection and the proxy's to the server."""

    def __init__(self, proxy: FaultyProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.drop_answer = threading.Event()
        self.go_away_after_answer = False

    def upstream(self) -> None:
        try:
            while data := self.client.recv(CHUNK):
                cut = self.proxy._take_cut(data)
                if cut is not None:
                    deliver, then_go_away = cut
                    if not deliver:
                        if then_go_away:
                            self.proxy.go_away()
                        break
                    self.go_away_after_answer = then_go_away
                    self.drop_answer.set()
                self.server.sendall(data)
        except OSError:
            pass
        if not self.drop_answer.is_set():
            self.proxy._forget(self.client, self.server)

    def downstream(self) -> None:
        try:
            while data := self.server.recv(CHUNK):
                if self.drop_answer.is_set():  # the server answered: that answer is lost
                    if self.go_away_after_answer:
                        self.proxy.go_away()
                    break
                self.client.sendall(data)
        except OSError:
            pass
        self.proxy._forget(self.client, self.server)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()

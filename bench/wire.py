"""Count round trips on the wire: a TCP proxy that names each one.

A round trip is one turn of a conversation: the client sends (one or more
messages, in one or more packets), then the server answers. The proxy sees
every byte of every connection, so it counts turns whatever the client
library does (pipelining, prepared statements, a pool): a turn starts when
the client sends after the server has spoken (or first), and is counted
once however many packets carry it. Each turn is named after what the client
sent in it:

- PostgreSQL: the frontend protocol's messages (``P`` parse, ``B`` bind,
  ``Q`` query); a bind names its prepared statement, whose text the proxy saw
  when it was parsed on that connection. The turn's name is its first
  statement, shortened (``SELECT * FROM chirp_events WHERE originator_id =
  ...``), with ``+n`` for more statements in the same turn.
- Redis: RESP arrays; the name is the first command (``EVALSHA``, ``GET``...),
  with ``+n`` for the rest of a pipeline.

The client must not use TLS (the proxy reads the bytes).
"""

from __future__ import annotations

import collections
import contextlib
import re
import socket
import struct
import threading
from collections.abc import Callable

CHUNK = 65536
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
SYNC = "sync"


class CountingProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``turns`` are the round
    trips named since the last :meth:`reset` (and who asked: the connection's
    number)."""

    def __init__(self, host: str, port: int, protocol: str) -> None:
        self.target = (host, port)
        self.protocol = protocol
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self.turns: list[tuple[int, str]] = []
        self._connections = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> list[tuple[int, str]]:
        """The turns counted so far, and start counting afresh."""
        with self._lock:
            turns, self.turns = self.turns, []
        return turns

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections += 1
                number = self._connections
            parser: _Parser = _Postgres() if self.protocol == "postgres" else _Redis()
            conversation = _Conversation(self, number, parser)
            threading.Thread(
                target=_pump, args=(client, server, conversation.client_sent), daemon=True
            ).start()
            threading.Thread(
                target=_pump, args=(server, client, conversation.server_sent), daemon=True
            ).start()

    def _count(self, connection: int, name: str) -> None:
        with self._lock:
            self.turns.append((connection, name))


class _Conversation:
    """One connection's turns: the client's bytes are parsed into messages;
    its first message after the server spoke starts a turn."""

    def __init__(self, proxy: CountingProxy, number: int, parser: _Parser) -> None:
        self.proxy = proxy
        self.number = number
        self.parser = parser
        self.lock = threading.Lock()
        self.server_spoke = True
        self.names: list[str] = []

    def client_sent(self, data: bytes) -> None:
        with self.lock:
            names = self.parser.feed(data)
            if not names:
                return
            if self.server_spoke:
                self._close_turn()
                self.server_spoke = False
            self.names.extend(names)

    def server_sent(self, data: bytes) -> None:
        with self.lock:
            self.server_spoke = True
            self._close_turn()

    def _close_turn(self) -> None:
        if self.names:
            statements = [name for name in self.names if name != SYNC]
            if not statements:
                self.proxy._count(self.number, SYNC)
            else:
                first, rest = statements[0], len(statements) - 1
                self.proxy._count(self.number, first if not rest else f"{first} +{rest}")
            self.names = []


class _Parser:
    def feed(self, data: bytes) -> list[str]:
        raise NotImplementedError


class _Postgres(_Parser):
    """The frontend messages' statements; control messages (sync, execute,
    describe, flush) name a turn only when it has no statement."""

    def __init__(self) -> None:
        self.buffer = b""
        self.started = False
        self.prepared: dict[str, str] = {}

    def feed(self, data: bytes) -> list[str]:
        self.buffer += data
        names: list[str] = []
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return names
                length, code = struct.unpack("!ii", self.buffer[:8])
                if len(self.buffer) < length:
                    return names
                self.buffer = self.buffer[length:]
                if code not in (SSL_REQUEST, GSSENC_REQUEST):
                    self.started = True
                names.append("connect")
                continue
            if len(self.buffer) < 5:
                return names
            kind = self.buffer[:1]
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return names
            body, self.buffer = self.buffer[5 : 1 + length], self.buffer[1 + length :]
            name = self._message(kind, body)
            if name:
                names.append(name)

    def _message(self, kind: bytes, body: bytes) -> str:
        if kind == b"Q":
            return shorten(body.split(b"\0", 1)[0].decode(errors="replace"))
        if kind == b"P":
            statement, rest = body.split(b"\0", 1)
            query = shorten(rest.split(b"\0", 1)[0].decode(errors="replace"))
            if statement:
                self.prepared[statement.decode()] = query
                return f"prepare {query}"
            return query
        if kind == b"B":
            _portal, rest = body.split(b"\0", 1)
            name = rest.split(b"\0", 1)[0].decode()
            return self.prepared.get(name, "") if name else ""
        if kind == b"X":
            return "close connection"
        return SYNC  # sync, execute, describe, flush: part of a statement's turn


class _Redis(_Parser):
    """RESP arrays of bulk strings (what redis-py sends): their commands."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[str]:
        self.buffer += data
        names: list[str] = []
        while self.buffer:
            parsed = _resp_command(self.buffer)
            if parsed is None:
                return names
            name, used = parsed
            self.buffer = self.buffer[used:]
            names.append(name)
        return names


def _resp_command(buffer: bytes) -> tuple[str, int] | None:
    """(the command's name, bytes used) of the array at the start of
    ``buffer``; None when it has not all arrived."""
    end = buffer.find(b"\r\n")
    if end < 0 or buffer[:1] != b"*":
        return None
    count, at = int(buffer[1:end]), end + 2
    name = ""
    for index in range(count):
        end = buffer.find(b"\r\n", at)
        if end < 0:
            return None
        size = int(buffer[at + 1 : end])
        start = end + 2
        if len(buffer) < start + size + 2:
            return None
        if index == 0:
            name = buffer[start : start + size].decode(errors="replace").upper()
        at = start + size + 2
    return name, at


_SCHEMA = re.compile(r'"?\b(bench|chirp)_[a-z0-9_]*"?\.')


def shorten(query: str, length: int = 72) -> str:
    """A statement's first words, without its schema, one line."""
    text = _SCHEMA.sub("", " ".join(query.split())).replace('"', "")
    return text if len(text) <= length else text[: length - 3] + "..."


def _pump(source: socket.socket, sink: socket.socket, seen: Callable[[bytes], None]) -> None:
    try:
        while data := source.recv(CHUNK):
            seen(data)
            sink.sendall(data)
    except OSError:
        pass
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def tally(turns: list[tuple[int, str]]) -> collections.Counter[str]:
    """How many turns of each name."""
    return collections.Counter(name for _, name in turns)

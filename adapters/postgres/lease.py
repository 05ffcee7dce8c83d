"""PostgresLease: a projection's lease as a PostgreSQL advisory lock.

A session-level advisory lock, taken with ``pg_try_advisory_lock`` on a
connection of the lease's own: PostgreSQL frees it when that connection ends,
so a holder that dies (its process killed, its machine gone) frees it at
once. A holder whose connection broke has lost the lease and asks again.
A process without the lease keeps its connection between attempts: it asks
at every poll, and a new connection each time would cost the server a new
process each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from typing import Any

import psycopg

from application.leases import Lease

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5


def advisory_key(name: str) -> int:
    """A signed 64-bit key (as ``pg_try_advisory_lock`` takes) for ``name``,
    the same in every process."""
    digest = hashlib.blake2b(f"chirp lease {name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresLease(Lease):
    """The lease ``name`` (for example ``catalog in public``) in the database
    that ``connection_params`` (psycopg.connect's keywords) names."""

    def __init__(self, name: str, **connection_params: Any) -> None:
        self.name = name
        self.key = advisory_key(name)
        self._params = connection_params
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False

    def try_acquire(self) -> bool:
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed or conn.broken:
                self._drop()  # a holder whose connection broke has lost the lease
                try:
                    conn = self._conn = psycopg.connect(
                        **self._params, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                    )
                except psycopg.OperationalError as error:
                    logger.warning("could not ask for the lease %r: %s", self.name, error)
                    return False
            elif self._held:
                return True
            try:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            except psycopg.OperationalError as error:
                logger.warning("could not ask for the lease %r: %s", self.name, error)
                self._drop()
                return False
            self._held = row is not None and bool(row[0])
            return self._held

    def release(self) -> None:
        """Give the lease up: unlocked at once (its connection's server
        process ends a moment after the connection closes), then closed."""
        with self._lock:
            if self._held and self._conn is not None and not self._conn.broken:
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            self._drop()

    def _drop(self) -> None:
        """Close the lease's connection, which frees the lock if it holds it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._held = False

"""PostgresLease: a projection's lease as a PostgreSQL advisory lock.

A session-level advisory lock, taken with ``pg_try_advisory_lock`` on a
connection of the lease's own: PostgreSQL frees it when that connection ends,
so a holder that dies (its process killed, its machine gone) frees it at
once. A holder whose connection broke has lost the lease and asks again.
"""

from __future__ import annotations

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

    def try_acquire(self) -> bool:
        with self._lock:
            if self._conn is not None and not self._conn.closed and not self._conn.broken:
                return True
            self._drop()
            try:
                conn = psycopg.connect(
                    **self._params, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                )
            except psycopg.OperationalError as error:
                logger.warning("could not ask for the lease %r: %s", self.name, error)
                return False
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            if row is None or not row[0]:
                conn.close()
                return False
            self._conn = conn
            return True

    def release(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        """Close the lease's connection, which frees the lock if it holds it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

"""SQLiteLease: a projection's lease as an exclusive lock on a SQLite file.

The lease is an open ``BEGIN EXCLUSIVE`` transaction on a small SQLite file
in the data directory, kept open while held: SQLite's own file locking, so
it works wherever the embedded stores do, and the operating system frees it
when the holder's process dies.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from application.leases import Lease


class SQLiteLease(Lease):
    """The lease held as an exclusive transaction on the SQLite file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def try_acquire(self) -> bool:
        with self._lock:
            if self._conn is not None:
                return True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("BEGIN EXCLUSIVE")
            except sqlite3.OperationalError:  # "database is locked": held elsewhere
                conn.close()
                return False
            self._conn = conn
            return True

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.rollback()
                self._conn.close()
                self._conn = None

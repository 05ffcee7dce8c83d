"""One process at a time creates a store's tables.

Processes that start together (a deploy, a restart) each create the tables
they need when they build Chirp. Creating them is not safe to run
concurrently: PostgreSQL fails a ``CREATE ... IF NOT EXISTS`` racing another
(``tuple concurrently updated``, a duplicate key in its catalog), and
eventsourcing's tracking recorders, on SQLite and PostgreSQL alike, first
check whether their table exists and then insert a marker row, which a
second process that checked before the first committed fails to insert. So
table creation takes turns: behind an advisory lock on the schema in
PostgreSQL, behind an exclusive lock on a lock file in the data directory
for SQLite. The lock is held only while tables are created; a process that
dies holding it releases it with its connection.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chirp.settings import PostgresParams

# Creating every table takes well under a second; a process waiting longer
# than this for another one to finish gives up with the database's error.
TABLES_LOCK_TIMEOUT_SECONDS = 60
CONNECT_TIMEOUT_SECONDS = 5
SQLITE_LOCK_FILE = "tables.lock"


def advisory_lock_key(schema: str) -> int:
    """The advisory lock of ``schema``'s tables: a signed 64-bit number (as
    ``pg_advisory_lock`` takes), the same in every process."""
    digest = hashlib.blake2b(f"chirp tables in {schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def postgres_tables_lock(params: PostgresParams, schema: str) -> Iterator[None]:
    """Hold the advisory lock of ``schema``'s tables (``public`` when empty,
    as eventsourcing defaults) in the database ``params`` names."""
    import psycopg

    key = advisory_lock_key(schema.strip() or "public")
    with psycopg.connect(
        dbname=params.dbname,
        host=params.host,
        port=params.port,
        user=params.user,
        password=params.password,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        autocommit=True,
    ) as conn:
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false)", (f"{TABLES_LOCK_TIMEOUT_SECONDS}s",)
        )
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


@contextmanager
def sqlite_tables_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the data directory's lock file (an empty
    SQLite database, so that the lock works wherever SQLite's does)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        data_dir / SQLITE_LOCK_FILE, timeout=TABLES_LOCK_TIMEOUT_SECONDS, isolation_level=None
    )
    try:
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.rollback()
    finally:
        conn.close()

"""A fresh PostgreSQL schema for a test, dropped afterwards, and the URL
Chirp's settings take for the server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from tests.services import require_postgres


@contextmanager
def fresh_postgres_schema() -> Iterator[tuple[dict[str, str], str]]:
    """The server's connection parameters (or a skip/failure, as
    ``require_postgres``) and the name of a new, empty schema."""
    params = require_postgres()
    schema = f"chirp_test_{uuid.uuid4().hex[:12]}"
    conninfo = psycopg.conninfo.make_conninfo(**params)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield params, schema
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def postgres_url(params: dict[str, str], port: int | None = None) -> str:
    """``DATABASE_URL`` for the server ``params`` names (through ``port``
    instead of its own, for a proxy in front of it)."""
    return (
        f"postgresql://{params['user']}:{params['password']}@{params['host']}:"
        f"{port or params['port']}/{params['dbname']}"
    )

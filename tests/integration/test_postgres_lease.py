"""PostgresLease against the lease contract, on the PostgreSQL server."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from adapters.postgres.lease import PostgresLease
from application.leases import Lease
from tests.contract.lease_contract import LeaseContract
from tests.services import require_postgres

pytestmark = pytest.mark.postgres


class TestPostgresLease(LeaseContract):
    @pytest.fixture(autouse=True)
    def _server(self) -> None:
        self.params = require_postgres()
        self.name = f"test lease {uuid.uuid4().hex}"

    def make_lease(self) -> Lease:
        return PostgresLease(self.name, **self.params)

    def holder_script(self) -> str:
        return f"""
            import sys
            from adapters.postgres.lease import PostgresLease
            lease = PostgresLease({self.name!r}, **{self.params!r})
            assert lease.try_acquire()
            print("held", flush=True)
            sys.stdin.read()
        """


def backends_named(params: dict[str, str], application: str) -> list[int]:
    """The server processes of the connections opened as ``application``."""
    conninfo = psycopg.conninfo.make_conninfo(**params)
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).fetchall()
    return [row[0] for row in rows]


def test_a_process_waiting_for_the_lease_asks_on_one_connection() -> None:
    """Each process asks for a lease it lacks at every poll (four times a
    second, per projection): on a connection it keeps, not a new one each
    time (a new server process costs the server milliseconds of CPU)."""
    params = require_postgres()
    name = f"test lease {uuid.uuid4().hex}"
    application = f"waiting {uuid.uuid4().hex[:8]}"
    holder = PostgresLease(name, **params)
    waiting = PostgresLease(name, **params, application_name=application)
    try:
        assert holder.try_acquire()
        assert not waiting.try_acquire()
        first = backends_named(params, application)
        for _ in range(10):
            assert not waiting.try_acquire()
        assert backends_named(params, application) == first
        assert len(first) == 1
        holder.release()
        assert waiting.try_acquire()  # on the same connection, once it is free
        assert backends_named(params, application) == first
    finally:
        holder.release()
        waiting.release()

"""PostgresLease against the lease contract, on the PostgreSQL server."""

from __future__ import annotations

import uuid

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

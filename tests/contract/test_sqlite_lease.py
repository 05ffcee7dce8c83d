"""SQLiteLease against the lease contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.sqlite.lease import SQLiteLease
from application.leases import Lease
from tests.contract.lease_contract import LeaseContract


class TestSQLiteLease(LeaseContract):
    @pytest.fixture(autouse=True)
    def _file(self, tmp_path: Path) -> None:
        self.path = tmp_path / "data" / "catalog.lease"

    def make_lease(self) -> Lease:
        return SQLiteLease(self.path)

    def holder_script(self) -> str:
        return f"""
            import sys
            from pathlib import Path
            from adapters.sqlite.lease import SQLiteLease
            lease = SQLiteLease(Path({str(self.path)!r}))
            assert lease.try_acquire()
            print("held", flush=True)
            sys.stdin.read()
        """

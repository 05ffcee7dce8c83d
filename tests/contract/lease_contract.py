"""The contract of the lease port (``application/leases.py``): one holder at
a time, released on request, and freed when the holder's process dies.
Each adapter's test module subclasses :class:`LeaseContract`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from abc import ABC, abstractmethod

from application.leases import Lease

PROCESS_TIMEOUT_SECONDS = 60


class LeaseContract(ABC):
    @abstractmethod
    def make_lease(self) -> Lease:
        """A new lease object for the same lease each time (another process's)."""

    @abstractmethod
    def holder_script(self) -> str:
        """Python code that takes the same lease in another process, prints
        ``held`` and waits for its standard input to close."""

    def test_one_holder_at_a_time(self) -> None:
        first, second = self.make_lease(), self.make_lease()
        try:
            assert first.try_acquire()
            assert first.try_acquire()  # held: asked again, still held
            assert not second.try_acquire()
            first.release()
            assert second.try_acquire()
            assert not first.try_acquire()
        finally:
            first.release()
            second.release()

    def test_releasing_a_lease_not_held_does_nothing(self) -> None:
        lease, other = self.make_lease(), self.make_lease()
        lease.release()
        assert other.try_acquire()
        lease.release()
        assert not lease.try_acquire()
        other.release()

    def test_a_holder_that_dies_frees_it(self) -> None:
        script = textwrap.dedent(self.holder_script())
        holder = subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        lease = self.make_lease()
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            assert not lease.try_acquire()
            holder.kill()
            holder.wait(PROCESS_TIMEOUT_SECONDS)
            assert lease.try_acquire()
        finally:
            holder.kill()
            holder.wait(PROCESS_TIMEOUT_SECONDS)
            lease.release()

"""The lease port: the right to run one projection, held by one process at a time.

Every process follows the log, but only the holder of a projection's lease
projects it; the others read its position, and take the lease over when its
holder dies (the store frees a dead holder's lock). A projection private to
a process (in-memory feeds) needs no lease from anyone (:class:`OwnLease`);
one that runs elsewhere (feeds projected by the Dramatiq workers) is never
taken here (:class:`HeldElsewhere`).

A lease spares work, it does not make projection correct: two holders at
once (a lease lost unnoticed) would both project, and the positions'
compare-and-set and idempotent writes keep the projection right.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class Lease(ABC):
    """A lock held by at most one process at a time, until released or the
    process dies. One object per projection and process, shared by its
    threads: once held, :meth:`try_acquire` answers without asking the store."""

    @abstractmethod
    def try_acquire(self) -> bool:
        """Take the lease if it is free; whether this process holds it now."""

    @abstractmethod
    def release(self) -> None:
        """Give the lease up (nothing if not held)."""


class OwnLease(Lease):
    """The lease of a projection only this process has: always held."""

    def try_acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


class HeldElsewhere(Lease):
    """The lease of a projection other processes run: never held here."""

    def try_acquire(self) -> bool:
        return False

    def release(self) -> None:
        pass

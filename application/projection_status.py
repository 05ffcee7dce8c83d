"""How far each projection has got: what the health page and ``chirp status`` show.

A projection is *ok* at the end of the log, *catching up* behind it, *retrying*
an event that failed, *stuck* once that event failed ``STUCK_AFTER_ATTEMPTS``
times in a row, and *unreachable* when its position cannot be read. A failure
is known only to the process that met it (its log says why); any process can
see the position, the end of the log and the event the projection waits on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

STUCK_AFTER_ATTEMPTS = 5

OK = "ok"
CATCHING_UP = "catching up"
RETRYING = "retrying"
STUCK = "stuck"
UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ProjectionFailure:
    """An event a projection could not apply, since when and how often."""

    event_id: int
    topic: str
    error_type: str  # the exception's class name
    error: str  # the exception's type and message
    attempts: int
    since: datetime  # the first failed attempt, UTC

    @property
    def stuck(self) -> bool:
        return self.attempts >= STUCK_AFTER_ATTEMPTS


@dataclass(frozen=True)
class PendingEvent:
    """The next event a projection has to apply."""

    event_id: int
    topic: str
    stored_at: datetime | None  # None when the event cannot be read


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int | None  # the last event applied; None when it cannot be read
    head: int  # the last event in the log
    pending: PendingEvent | None
    failure: ProjectionFailure | None

    @property
    def lag(self) -> int | None:
        return None if self.position is None else max(0, self.head - self.position)

    @property
    def state(self) -> str:
        if self.failure is not None:
            return STUCK if self.failure.stuck else RETRYING
        if self.position is None:
            return UNREACHABLE
        return OK if self.position >= self.head else CATCHING_UP

    @property
    def healthy(self) -> bool:
        return self.state not in (STUCK, UNREACHABLE)

"""Rebuild every feed from the event log: the log is the truth, feeds are projections.

``replay_feeds`` replays from event 0 into an empty provider with a fresh
position, reporting progress per batch. ``rebuild_feeds`` projects the log
again through a projector whose provider and position were just emptied (a
lost or corrupted feed store, rebuilt in place): the position is shared, so
projectors running elsewhere carry on from wherever it is.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from eventsourcing.popo import POPOTrackingRecorder

from application.commands import ChirpApplication
from application.feeds import DEFAULT_COPY_LIMIT, FeedProvider, FeedUnavailableError
from application.log_follower import LogFollower
from application.projectors import FeedProjector

REPLAY_BATCH_SIZE = 2000


class ReplayStopped(Exception):
    """An event could not be projected: the replay stopped before it."""


@dataclass(frozen=True)
class ReplayReport:
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: a replay builds millions of
    small containers (feed entries) that hold no reference cycles, and each
    full collection would walk all of them again (it took half of a replay's
    time). Reference counting frees everything as usual meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def count_events(commands: ChirpApplication) -> int:
    return commands.recorder.max_notification_id() or 0


def replay_feeds(
    commands: ChirpApplication,
    provider: FeedProvider,
    follow_copy_limit: int = DEFAULT_COPY_LIMIT,
    on_progress: Callable[[int], object] | None = None,
) -> ReplayReport:
    """Project the whole log into ``provider``, which must be empty."""
    projector = FeedProjector(provider, POPOTrackingRecorder(), follow_copy_limit)
    return rebuild_feeds(commands, projector, on_progress, stop=count_events(commands))


def rebuild_feeds(
    commands: ChirpApplication,
    projector: FeedProjector,
    on_progress: Callable[[int], object] | None = None,
    stop: int | None = None,
) -> ReplayReport:
    """Project the log through ``projector``, from its (emptied) position
    up to event ``stop`` (every event when None); the report counts the
    events this process projected (projectors running elsewhere that share
    the position share the work)."""
    follower = LogFollower(commands, projector, batch_size=REPLAY_BATCH_SIZE, name="replay")
    started = time.perf_counter()
    try:
        with cyclic_gc_paused():
            events = 0 if stop == 0 else follower.catch_up_in_batches(on_progress, stop)
    except FeedUnavailableError:
        raise
    except Exception as error:
        failure = follower.failure
        if failure is None:
            raise
        raise ReplayStopped(
            f"replay stopped at event {failure.event_id} ({failure.topic}), which could not be"
            f" projected: {failure.error}. The events before it are projected; see"
            " docs/operations.md, 'A stuck projection'"
        ) from error
    return ReplayReport(events, time.perf_counter() - started)

"""A feed projector that fails on chosen posts, as a bug or a service
refusing one event would, until it is fixed; and a clock tests move by hand."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.inmemory.feeds import InMemoryFeedProvider
from application.commands import ChirpApplication
from application.log_follower import LogFollower
from application.projectors import FeedProjector
from application.service import Chirp
from domain.tweet import Tweet


class Broken(Exception):
    pass


class PoisonedProjector(FeedProjector):
    """Fails on every post containing "poison" while ``broken`` is set: a
    bug, or a service refusing that one event, fixed later."""

    broken = True

    def process(self, event: DomainEventProtocol[Any], tracking: Tracking) -> None:
        if self.broken and isinstance(event, Tweet.Posted) and "poison" in event.text:
            raise Broken("cannot project this post")
        super().process(event, tracking)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def poisoned_chirp(clock: Clock) -> tuple[Chirp, PoisonedProjector, ChirpApplication]:
    app = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    projector = PoisonedProjector(InMemoryFeedProvider(), POPOTrackingRecorder())
    chirp = Chirp(app, InMemoryCatalog(), projector)
    chirp.feed_follower = LogFollower(
        app, projector, name="feeds", first_retry=1.0, max_retry=8.0, clock=clock
    )
    return chirp, projector, app

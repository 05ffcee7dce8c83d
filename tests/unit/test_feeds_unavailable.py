"""When the feed service is down, commands still land in the log and nothing is lost."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.inmemory.feeds import InMemoryFeedProvider
from application.commands import ChirpApplication
from application.feeds import Activity, FeedId, FeedUnavailableError, StoredActivity
from application.projectors import FeedProjector
from application.service import Chirp


class FlakyProvider(InMemoryFeedProvider):
    """An in-memory provider that can be switched off, like an unreachable server."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise FeedUnavailableError("feed service unreachable")

    def add_activity(self, feed: FeedId, activity: Activity) -> str:
        self._check()
        return super().add_activity(feed, activity)

    def follow(self, source: FeedId, target: FeedId, activity_copy_limit: int = 100) -> None:
        self._check()
        super().follow(source, target, activity_copy_limit)

    def add_to_many(self, activity: Activity, feeds: Sequence[FeedId]) -> str:
        self._check()
        return super().add_to_many(activity, feeds)

    def read(self, feed: FeedId, limit: int = 25, id_lt: str | None = None) -> list[StoredActivity]:
        self._check()
        return super().read(feed, limit, id_lt)


def test_commands_succeed_while_feeds_are_down_and_are_projected_later() -> None:
    provider = FlakyProvider()
    app = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    chirp = Chirp(app, InMemoryCatalog(), FeedProjector(provider, POPOTrackingRecorder()))
    chirp.register("alice")
    chirp.register("bob")
    chirp.follow("bob", "alice")

    provider.down = True
    post_id = chirp.post("alice", "posted while feeds were down")
    assert chirp.queries.user("alice").posts_count == 1  # the catalog has it
    with pytest.raises(FeedUnavailableError):
        chirp.queries.home_timeline("bob")

    provider.down = False
    chirp.sync()
    [item] = chirp.queries.home_timeline("bob").items
    assert item.post_id == post_id
    assert chirp.feed_follower.position == app.recorder.max_notification_id()

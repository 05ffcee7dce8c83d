"""Exactly-once projection: a crash at any point neither loses nor duplicates a feed entry.

The feed projector writes to the provider, then records the event's position.
A crash between the two replays the event on restart; the provider's writes
are idempotent, so the replay changes nothing. A crash inside the provider
(part of a fan-out done) is retried the same way. A position moved back
under a catch-up (a shard lost feed writes) makes it project again from there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.inmemory.feeds import InMemoryFeedProvider
from application.commands import ChirpApplication
from application.feed_names import hashtag_feed, mentions_feed, timeline_feed, user_feed
from application.feeds import Activity, FeedId
from application.projectors import FeedProjector
from application.replay import replay_feeds
from application.service import Chirp


class Crash(Exception):
    pass


class CrashingTracking(POPOTrackingRecorder):
    """Fails to record the position of chosen events, once each: a process
    that died after writing the feeds but before recording how far it got."""

    def __init__(self, crash_at: set[int]) -> None:
        super().__init__()
        self.crash_at = set(crash_at)

    def insert_tracking(self, tracking: Tracking) -> None:
        if tracking.notification_id in self.crash_at:
            self.crash_at.discard(tracking.notification_id)
            raise Crash(f"died before recording event {tracking.notification_id}")
        super().insert_tracking(tracking)


class MovedBackTracking(TrackingRecorder):
    """A position that, as this process is about to record event ``at``,
    another one moves back to ``to`` (ShardHistory does, when a Redis Cluster
    shard lost feed writes past ``to``): the insert fails, as
    RedisTrackingRecorder's does then."""

    def __init__(self, at: int, to: int) -> None:
        self.at, self.to = at, to
        self.positions: dict[str, int] = {}

    def insert_tracking(self, tracking: Tracking) -> None:
        name, proposed = tracking.application_name, tracking.notification_id
        if proposed == self.at:
            self.at = 0  # once
            self.positions[name] = self.to
            raise IntegrityError("the position was moved back")
        if proposed <= self.positions.get(name, 0):
            raise IntegrityError(f"position {proposed} was already passed")
        self.positions[name] = proposed

    def max_tracking_id(self, application_name: str) -> int | None:
        return self.positions.get(application_name)


class RecordingProjector(FeedProjector):
    """The feed projector, noting each event it projects."""

    def __init__(self, provider: InMemoryFeedProvider, tracking: TrackingRecorder) -> None:
        super().__init__(provider, tracking)
        self.projected: list[int] = []

    def process(self, event: DomainEventProtocol[Any], tracking: Tracking) -> None:
        self.projected.append(tracking.notification_id)
        super().process(event, tracking)


class CrashingProvider(InMemoryFeedProvider):
    """Dies after copying an activity into some feeds but not others."""

    def __init__(self) -> None:
        super().__init__()
        self.crashes_left = 0

    def add_activity(self, feed: FeedId, activity: Activity) -> str:
        if self.crashes_left and activity.to:
            self.crashes_left -= 1
            super().add_to_many(activity, [feed, activity.to[0]])  # a partial fan-out
            raise Crash("died in the middle of a fan-out")
        return super().add_activity(feed, activity)


def write_history(app: ChirpApplication) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for name in ("alice", "bob", "carol"):
        app.register(name)
    app.follow("bob", "alice")
    app.follow("carol", "alice")
    for n in range(6):
        app.post("alice", f"post {n} #news @carol", start + timedelta(minutes=n))
    app.unfollow("bob", "alice")
    app.follow("bob", "alice")
    app.post("bob", "hi @alice #news", start + timedelta(hours=1))


def all_feeds(provider: InMemoryFeedProvider) -> dict[str, list[str]]:
    feeds = [hashtag_feed("news")]
    for name in ("alice", "bob", "carol"):
        feeds += [user_feed(name), timeline_feed(name), mentions_feed(name)]
    return {str(feed): [a.id for a in provider.read(feed, limit=100)] for feed in feeds}


def expected_feeds(app: ChirpApplication) -> dict[str, list[str]]:
    reference = InMemoryFeedProvider()
    replay_feeds(app, reference)
    return all_feeds(reference)


def test_a_crash_before_recording_the_position_replays_the_event_harmlessly() -> None:
    app = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    write_history(app)
    provider = InMemoryFeedProvider()
    last = app.recorder.max_notification_id() or 0
    tracking = CrashingTracking(crash_at=set(range(1, last + 1)))
    chirp = Chirp(app, InMemoryCatalog(), FeedProjector(provider, tracking))
    chirp.catalog_follower.catch_up()

    crashes = 0
    while True:
        try:
            chirp.feed_follower.catch_up()
            break
        except Crash:
            crashes += 1
    assert crashes == last  # every event was applied twice
    assert chirp.feed_follower.position == last
    feeds = all_feeds(provider)
    assert feeds == expected_feeds(app)
    assert all(len(ids) == len(set(ids)) for ids in feeds.values())
    assert len(feeds["timeline:bob"]) == 7  # alice's six, again after re-follow, and bob's own


def test_a_crash_in_the_middle_of_a_fan_out_is_completed_on_retry() -> None:
    app = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    write_history(app)
    provider = CrashingProvider()
    provider.crashes_left = 3
    chirp = Chirp(app, InMemoryCatalog(), FeedProjector(provider, POPOTrackingRecorder()))
    chirp.catalog_follower.catch_up()
    for _ in range(3):
        with pytest.raises(Crash):
            chirp.feed_follower.catch_up()
    chirp.feed_follower.catch_up()
    assert all_feeds(provider) == expected_feeds(app)


def test_a_restarted_projector_resumes_from_its_position() -> None:
    app = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    write_history(app)
    provider = InMemoryFeedProvider()
    tracking = POPOTrackingRecorder()
    first = Chirp(app, InMemoryCatalog(), FeedProjector(provider, tracking))
    assert first.feed_follower.catch_up(stop=5) == 5
    # A new process with the same durable provider and position.
    second = Chirp(app, InMemoryCatalog(), FeedProjector(provider, tracking))
    total = app.recorder.max_notification_id() or 0
    assert second.feed_follower.catch_up() == total - 5
    assert all_feeds(provider) == expected_feeds(app)


def test_a_position_moved_back_under_a_catch_up_makes_it_project_again_from_there() -> None:
    """Another process moved the position back (a shard lost the feed writes
    of events 4 on) while this catch-up was at event 9: it does not carry the
    position forward past them, it goes again from event 4."""
    app = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    write_history(app)
    provider = InMemoryFeedProvider()
    projector = RecordingProjector(provider, MovedBackTracking(at=9, to=3))
    chirp = Chirp(app, InMemoryCatalog(), projector)
    chirp.catalog_follower.catch_up()
    last = app.recorder.max_notification_id() or 0
    chirp.feed_follower.catch_up()
    assert projector.projected == [*range(1, 10), *range(4, last + 1)]
    assert chirp.feed_follower.position == last
    assert all_feeds(provider) == expected_feeds(app)

"""Projecting the log a batch at a time gives exactly the feeds that projecting
it one event at a time gives, whatever the batch size, records the position
once per batch, and stops at an event it cannot project with the events
before it projected and their position recorded."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent, Tracking, TrackingRecorder
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.feeds import InMemoryFeedProvider
from application.commands import ChirpApplication
from application.feed_names import timeline_feed, user_feed
from application.feeds import FeedInputError
from application.log_follower import LogFollower
from application.projectors import FeedProjector, follow_runs
from application.replay import ReplayStopped, rebuild_feeds
from domain.tweet import Tweet
from domain.user import User
from tests.batch_projection import (
    START,
    feeds_of,
    popo_app,
    project_one_by_one,
    write_history,
    write_unprojectable_follow,
)
from tests.unit.test_projection_recovery import Crash, CrashingTracking, MovedBackTracking


class CountingTracking(POPOTrackingRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[int] = []

    def insert_tracking(self, tracking: Tracking) -> None:
        super().insert_tracking(tracking)
        self.recorded.append(tracking.notification_id)


class BatchRecordingProjector(FeedProjector):
    """Notes the position of each event it is given in batches."""

    def __init__(self, provider: InMemoryFeedProvider, tracking: TrackingRecorder) -> None:
        super().__init__(provider, tracking)
        self.given: list[int] = []

    def process_batch(self, batch: Any) -> None:
        self.given += [tracking.notification_id for _, tracking in batch]
        super().process_batch(batch)


def reference(app: ChirpApplication) -> dict[str, list[Any]]:
    provider = InMemoryFeedProvider()
    project_one_by_one(app, provider, POPOTrackingRecorder())
    return feeds_of(provider)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8, 1000])
def test_batches_of_any_size_give_the_feeds_of_one_event_at_a_time(batch_size: int) -> None:
    app = popo_app()
    write_history(app)
    provider, tracking = InMemoryFeedProvider(), CountingTracking()
    follower = LogFollower(app, FeedProjector(provider, tracking), batch_size=batch_size)
    last = app.recorder.max_notification_id() or 0
    assert follower.catch_up_in_batches() == last
    assert feeds_of(provider) == reference(app)
    assert follower.position == last
    # One position a batch, each the last event of its batch.
    assert tracking.recorded == [*range(batch_size, last, batch_size), last]


def test_the_same_with_hybrid_feeds() -> None:
    """Feeds fanned out at read time (threshold 1) read the same whether the
    log was projected in batches or one event at a time."""
    app = popo_app()
    write_history(app)
    batched = InMemoryFeedProvider(celebrity_threshold=1)
    LogFollower(
        app, FeedProjector(batched, POPOTrackingRecorder()), batch_size=7
    ).catch_up_in_batches()
    one_by_one = InMemoryFeedProvider(celebrity_threshold=1)
    project_one_by_one(app, one_by_one, POPOTrackingRecorder())
    assert feeds_of(batched) == feeds_of(one_by_one) == reference(app)


def test_runs_group_consecutive_registrations_and_follows_only() -> None:
    app = popo_app()
    for name in ("ann", "ben"):
        app.register(name)
    app.follow("ann", "ben")
    app.follow("ben", "ann")
    app.post("ann", "hi")
    app.unfollow("ann", "ben")
    app.register("cat")
    events = [
        app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=100)
    ]
    kinds: list[type] = [type(event) for event in events]
    assert kinds == [
        User.Registered,
        User.Registered,
        User.Followed,
        User.Followed,
        Tweet.Posted,
        User.Unfollowed,
        User.Registered,
    ]
    assert follow_runs(events) == [(0, 2), (2, 4), (4, 5), (5, 6), (6, 7)]


def test_a_replay_stops_at_a_follow_it_cannot_project_inside_a_run_of_follows() -> None:
    app = popo_app()
    write_history(app)
    bad = write_unprojectable_follow(app)
    tracking = POPOTrackingRecorder()
    provider = InMemoryFeedProvider()
    with pytest.raises(ReplayStopped) as stopped:
        rebuild_feeds(app, FeedProjector(provider, tracking))
    assert str(stopped.value).startswith(f"replay stopped at event {bad} (chirp:UserFollowed)")
    assert isinstance(stopped.value.__cause__, FeedInputError)
    # The follows before it in its run are projected, the one after it not.
    assert tracking.max_tracking_id("chirp") == bad - 1
    assert timeline_feed("dave") in provider.followers(user_feed("bob"), limit=100)
    assert provider.followers(user_feed("carol"), limit=100) == [timeline_feed("carol")]
    assert feeds_of(provider) == reference(app)


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_the_failing_event_is_noted_and_the_follower_goes_on_once_it_projects(
    batch_size: int,
) -> None:
    app = popo_app()
    write_history(app)
    bad = write_unprojectable_follow(app)
    projector = FeedProjector(InMemoryFeedProvider(), POPOTrackingRecorder())
    follower = LogFollower(app, projector, batch_size=batch_size, name="replay")
    with pytest.raises(FeedInputError):
        follower.catch_up_in_batches()
    assert follower.failure is not None
    assert (follower.failure.event_id, follower.failure.attempts) == (bad, 1)
    assert follower.position == bad - 1
    with pytest.raises(FeedInputError):
        follower.catch_up_in_batches()
    assert follower.failure.attempts == 2


def test_a_replay_stops_at_a_post_it_cannot_project_between_runs() -> None:
    app = popo_app()
    write_history(app)
    app.follow("dave", "bob")
    mention = {"kind": "mention", "text": "no such name!", "start": 0, "end": 4}
    app.save(Tweet(author="alice", text="@bob", posted_at=START, entities=[mention]))
    bad = app.recorder.max_notification_id() or 0
    app.follow("erin", "carol")
    tracking = POPOTrackingRecorder()
    provider = InMemoryFeedProvider()
    with pytest.raises(
        ReplayStopped, match=rf"^replay stopped at event {bad} \(chirp:TweetPosted\)"
    ):
        rebuild_feeds(app, FeedProjector(provider, tracking))
    assert tracking.max_tracking_id("chirp") == bad - 1
    assert feeds_of(provider) == reference(app)


def test_a_crash_before_a_batch_is_recorded_projects_it_again_harmlessly() -> None:
    app = popo_app()
    write_history(app)
    last = app.recorder.max_notification_id() or 0
    provider = InMemoryFeedProvider()
    tracking = CrashingTracking(crash_at={4, 8, last})
    follower = LogFollower(app, FeedProjector(provider, tracking), batch_size=4)
    crashes = 0
    while True:
        try:
            follower.catch_up_in_batches()
            break
        except Crash:
            crashes += 1
    assert crashes == 3
    assert follower.position == last
    assert feeds_of(provider) == reference(app)


def test_a_position_moved_back_under_a_batch_makes_it_project_again_from_there() -> None:
    app = popo_app()
    write_history(app)
    last = app.recorder.max_notification_id() or 0
    provider = InMemoryFeedProvider()
    projector = BatchRecordingProjector(provider, MovedBackTracking(at=8, to=3))
    follower = LogFollower(app, projector, batch_size=4)
    assert follower.catch_up_in_batches() == last - 3 + 4  # events 4 to 8 went twice
    assert projector.given == [*range(1, 9), *range(4, last + 1)]
    assert follower.position == last
    assert feeds_of(provider) == reference(app)


def test_a_replay_stops_at_an_event_it_cannot_even_read() -> None:
    app = popo_app()
    write_history(app)
    app.follow("dave", "bob")
    unknown = StoredEvent(uuid4(), 1, "chirp:NoSuchEvent", b"{}")
    app.recorder.insert_events([unknown])
    bad = app.recorder.max_notification_id() or 0
    app.follow("erin", "carol")
    tracking = POPOTrackingRecorder()
    provider = InMemoryFeedProvider()
    with pytest.raises(
        ReplayStopped, match=rf"^replay stopped at event {bad} \(chirp:NoSuchEvent\)"
    ):
        rebuild_feeds(app, FeedProjector(provider, tracking))
    assert tracking.max_tracking_id("chirp") == bad - 1
    assert timeline_feed("dave") in provider.followers(user_feed("bob"), limit=100)
    assert provider.followers(user_feed("carol"), limit=100) == [timeline_feed("carol")]

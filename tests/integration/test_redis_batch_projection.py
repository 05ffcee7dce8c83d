"""Batch projection into Redis feeds: the same feeds as one event at a time
(``tests/batch_projection.py``'s history), one position recorded in Redis per
batch, and a replay that meets an event it cannot project stops there, the
events before it projected and their position recorded. Each test works in
namespaces of its own, deleted at its end."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from adapters.redis import RedisFeedProvider
from adapters.redis.tracking import RedisTrackingRecorder
from application.feed_names import timeline_feed, user_feed
from application.feeds import FeedInputError
from application.log_follower import LogFollower
from application.projectors import FeedProjector
from application.replay import ReplayStopped, rebuild_feeds
from tests.batch_projection import (
    feeds_of,
    popo_app,
    project_one_by_one,
    write_history,
    write_unprojectable_follow,
)
from tests.services import require_redis

pytestmark = pytest.mark.redis

Stores = Callable[[], tuple[RedisFeedProvider, RedisTrackingRecorder]]


@pytest.fixture
def stores() -> Iterator[Stores]:
    """Makes a Redis provider and position in a fresh namespace."""
    client = redis.Redis.from_url(require_redis())
    namespaces: list[str] = []

    def make() -> tuple[RedisFeedProvider, RedisTrackingRecorder]:
        namespace = f"batch-{uuid.uuid4().hex}"
        namespaces.append(namespace)
        return RedisFeedProvider(client, namespace), RedisTrackingRecorder(client, namespace)

    try:
        yield make
    finally:
        for namespace in namespaces:
            for key in client.scan_iter(match=f"{namespace}:*"):
                client.delete(key)
        client.close()


@pytest.mark.parametrize("batch_size", [2, 5, 1000])
def test_batches_give_the_feeds_of_one_event_at_a_time(stores: Stores, batch_size: int) -> None:
    app = popo_app()
    write_history(app)
    one_by_one, one_tracking = stores()
    project_one_by_one(app, one_by_one, one_tracking)
    batched, tracking = stores()
    follower = LogFollower(app, FeedProjector(batched, tracking), batch_size=batch_size)
    last = app.recorder.max_notification_id() or 0
    assert follower.catch_up_in_batches() == last
    assert tracking.max_tracking_id("chirp") == last
    assert feeds_of(batched) == feeds_of(one_by_one)
    assert feeds_of(batched)["timeline:erin"]  # not all empty


def test_a_replay_stops_at_a_follow_it_cannot_project_inside_a_run(stores: Stores) -> None:
    app = popo_app()
    write_history(app)
    bad = write_unprojectable_follow(app)
    one_by_one, one_tracking = stores()
    assert project_one_by_one(app, one_by_one, one_tracking).position == bad - 1
    provider, tracking = stores()
    with pytest.raises(ReplayStopped) as stopped:
        rebuild_feeds(app, FeedProjector(provider, tracking))
    assert str(stopped.value).startswith(f"replay stopped at event {bad} (chirp:UserFollowed)")
    assert isinstance(stopped.value.__cause__, FeedInputError)
    assert tracking.max_tracking_id("chirp") == bad - 1
    assert timeline_feed("dave") in provider.followers(user_feed("bob"), limit=100)
    assert provider.followers(user_feed("carol"), limit=100) == [timeline_feed("carol")]
    assert feeds_of(provider) == feeds_of(one_by_one)

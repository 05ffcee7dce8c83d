"""A history for batch projection tests, and what its feeds hold.

Follows, unfollows and re-follows, registrations after the first posts,
deletes and mentions, all interleaved, so that batches of any size cut runs
of follows and registrations at every place. Shared by the in-memory tests
(tests/unit/test_batch_projection.py) and the Redis ones
(tests/integration/test_redis_batch_projection.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.persistence import TrackingRecorder

from application.commands import ChirpApplication
from application.feed_names import (
    hashtag_feed,
    mentions_feed,
    notifications_feed,
    timeline_feed,
    user_feed,
)
from application.feeds import FeedProvider
from application.log_follower import LogFollower
from application.projectors import FeedProjector

NAMES = ("alice", "bob", "carol", "dave", "erin")
START = datetime(2025, 1, 1, tzinfo=UTC)


def popo_app() -> ChirpApplication:
    return ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def write_history(app: ChirpApplication) -> None:
    for name in NAMES[:4]:
        app.register(name)
    app.follow("bob", "alice")
    app.follow("carol", "alice")
    app.follow("dave", "alice")
    app.follow("alice", "bob")
    posts = [
        app.post("alice", f"post {n} #news @carol", START + timedelta(minutes=n)) for n in range(5)
    ]
    app.unfollow("bob", "alice")
    app.post("bob", "hi @alice #news", START + timedelta(hours=1))
    app.delete_post(posts[1], "alice")
    app.register("erin")
    app.follow("erin", "alice")
    app.follow("bob", "alice")  # again
    app.follow("erin", "bob")
    app.post("alice", "later #news @erin", START + timedelta(hours=2))
    app.delete_post(posts[3], "alice")
    app.unfollow("carol", "alice")
    app.follow("carol", "alice")
    app.follow("carol", "bob")
    app.follow("dave", "erin")
    app.post("erin", "hello @dave", START + timedelta(hours=3))


def write_unprojectable_follow(app: ChirpApplication) -> int:
    """A follow of a name no feed id can hold, as a bug could store one,
    between other follows; returns its position in the log."""
    app.follow("dave", "bob")
    user = app.get_user("alice")
    user._follow("alice", "no such name!")  # the event, without the rule
    app.save(user)
    position = app.recorder.max_notification_id() or 0
    app.follow("erin", "carol")
    app.follow("bob", "carol")
    return position


def feeds_of(provider: FeedProvider) -> dict[str, list[Any]]:
    """Every feed of the history, newest first, and every follow list in
    its order."""
    found: dict[str, list[Any]] = {}
    feeds = [hashtag_feed("news")]
    for name in NAMES:
        feeds += [user_feed(name), timeline_feed(name), mentions_feed(name)]
        feeds += [notifications_feed(name)]
    for feed in feeds:
        found[str(feed)] = [(a.id, a.foreign_id) for a in provider.read(feed, limit=100)]
    for name in NAMES:
        found[f"followers of {name}"] = provider.followers(user_feed(name), limit=100)
        found[f"followed by {name}"] = provider.following(timeline_feed(name), limit=100)
    return found


def project_one_by_one(
    app: ChirpApplication, provider: FeedProvider, tracking: TrackingRecorder
) -> LogFollower:
    """The incremental way: ``catch_up``, each event on its own (stops at an
    event it cannot project)."""
    follower = LogFollower(app, FeedProjector(provider, tracking), name="one-by-one")
    try:
        follower.catch_up()
    except Exception:  # noted by the follower
        assert follower.failure is not None
    return follower

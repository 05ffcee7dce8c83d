"""An event a projection cannot apply never turns a stored command into an
error, never stops the log from growing, is reported, and projects once the
cause is gone, with the events that waited behind it."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from eventsourcing.persistence import Tracking
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.inmemory.feeds import InMemoryFeedProvider
from application.catalog import PostView
from application.commands import ChirpApplication
from application.log_follower import LogFollower, catch_up_each
from application.projection_status import (
    CATCHING_UP,
    OK,
    RETRYING,
    STUCK,
    STUCK_AFTER_ATTEMPTS,
)
from application.projectors import FeedProjector
from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from tests.poison import Broken, Clock, PoisonedProjector, poisoned_chirp
from tests.unit.test_projection_recovery import all_feeds, expected_feeds


def test_a_failing_event_never_fails_a_command_and_projects_once_fixed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    chirp, projector, app = poisoned_chirp(clock)
    for name in ("alice", "bob", "carol"):
        chirp.register(name)
    chirp.follow("bob", "alice")
    before = app.recorder.max_notification_id() or 0

    poison = chirp.post("alice", "poison @carol #news")  # stored: the command succeeded
    assert app.get_post(poison).text == "poison @carol #news"
    # Reading it tries to project it, fails, and shows the feeds as they are.
    assert chirp.queries.mentions("carol").items == []
    feeds = chirp.feed_follower.status()
    assert (feeds.state, feeds.position, feeds.head) == (RETRYING, before, before + 1)
    assert feeds.failure is not None
    assert (feeds.failure.event_id, feeds.failure.topic) == (before + 1, "chirp:TweetPosted")
    assert feeds.failure.attempts == 1 and "Broken: cannot project this post" in feeds.failure.error
    assert feeds.pending is not None and feeds.pending.event_id == before + 1

    # Later commands are stored too; reads do not retry before the retry is due.
    later = chirp.post("bob", "hello @alice")
    chirp.register("dave")
    assert chirp.queries.post(later).text == "hello @alice"  # the catalog projects on
    assert chirp.feed_follower.status().failure.attempts == 1  # type: ignore[union-attr]
    assert chirp.catalog_follower.status().state == OK

    # Each due retry fails again, backing off, until the event is stuck.
    caplog.set_level(logging.WARNING, logger="application.log_follower")
    for attempt in range(2, STUCK_AFTER_ATTEMPTS + 1):
        clock.now += 8.0
        chirp.register(f"user{attempt}")
        chirp.queries.home_timeline("alice")  # a read: the retry is due
        assert chirp.feed_follower.status().failure.attempts == attempt  # type: ignore[union-attr]
    stuck = chirp.feed_follower.status()
    assert stuck.state == STUCK and not stuck.healthy
    assert stuck.position == before
    assert any(
        record.levelno == logging.ERROR
        and f"on event {before + 1}" in record.getMessage()
        and "stuck" in record.getMessage()
        for record in caplog.records
    )

    # Fixed: the next due retry projects it and everything after it.
    projector.broken = False
    clock.now += 8.0
    chirp.register("erin")
    chirp.queries.home_timeline("erin")
    resumed = chirp.feed_follower.status()
    assert (resumed.state, resumed.failure) == (OK, None)
    assert resumed.position == app.recorder.max_notification_id()
    assert all_feeds(projector.provider) == expected_feeds(app)  # type: ignore[arg-type]
    assert [item.post_id for item in chirp.queries.mentions("carol").items] == [poison]
    assert any("resumed" in record.getMessage() for record in caplog.records)


def test_sync_retries_at_once_and_never_raises() -> None:
    clock = Clock()
    chirp, projector, _ = poisoned_chirp(clock)
    chirp.register("alice")
    chirp.post("alice", "poison")
    chirp.sync()  # fails, quietly
    chirp.sync()  # not due, but forced: fails a second time
    assert chirp.feed_follower.status().failure.attempts == 2  # type: ignore[union-attr]
    projector.broken = False
    chirp.sync()
    assert chirp.feed_follower.status().state == OK


def test_catch_up_raises_what_the_projector_raised_and_notes_it() -> None:
    chirp, _, app = poisoned_chirp(Clock())
    chirp.register("alice")
    chirp.post("alice", "poison")
    with pytest.raises(Broken):
        chirp.feed_follower.catch_up()
    assert chirp.feed_follower.failure is not None
    assert chirp.feed_follower.failure.event_id == app.recorder.max_notification_id()


def test_a_projection_behind_says_which_event_it_waits_on() -> None:
    app = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    chirp = Chirp(
        app,
        InMemoryCatalog(),
        FeedProjector(InMemoryFeedProvider(), POPOTrackingRecorder()),
        read_own_writes=False,
    )
    chirp.register("alice")
    chirp.register("bob")
    catalog, feeds = chirp.projections()
    assert (catalog.name, feeds.name) == ("catalog", "feeds")
    assert (feeds.state, feeds.position, feeds.head, feeds.lag) == (CATCHING_UP, 0, 2, 2)
    assert feeds.pending is not None
    assert (feeds.pending.event_id, feeds.pending.topic) == (1, "chirp:UserRegistered")
    assert feeds.pending.stored_at is not None
    chirp.sync()
    assert [status.state for status in chirp.projections()] == [OK, OK]


def test_the_background_follower_retries_until_the_event_projects() -> None:
    app = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    projector = PoisonedProjector(InMemoryFeedProvider(), POPOTrackingRecorder())
    chirp = Chirp(app, InMemoryCatalog(), projector)
    retried, resumed = threading.Event(), threading.Event()

    class Follower(LogFollower):
        def _note_failure(self, *args: Any) -> None:
            super()._note_failure(*args)
            if self.failure is not None and self.failure.attempts >= 2:
                retried.set()

        def _forget_failure_before(self, position: int) -> None:
            had_failed = self.failure is not None
            super()._forget_failure_before(position)
            if had_failed and self.failure is None:
                resumed.set()

    chirp.feed_follower = Follower(app, projector, name="feeds", first_retry=0.01, max_retry=0.05)
    chirp.register("alice")
    chirp.post("alice", "poison")
    chirp.start_following(poll_interval=0.01)
    try:
        assert retried.wait(10), "the background follower never retried"
        projector.broken = False
        assert resumed.wait(10), "the background follower never projected the event"
        assert chirp.feed_follower.position == app.recorder.max_notification_id()
    finally:
        chirp.close()


def test_a_post_mentioning_34_people_projects_and_later_commands_too() -> None:
    """The report: 34 mentions make 102 feed targets, past GetStream's 100 a
    request; the projection stopped there and every later command failed."""
    chirp = build_chirp(Settings(database_url="memory:"))
    names = [f"u{n}" for n in range(34)]
    for name in ["author", *names]:
        chirp.register(name)
    post_id = chirp.post("author", " ".join(f"@{name}" for name in names))
    chirp.register("later")
    for name in names:
        assert [item.post_id for item in chirp.queries.mentions(name).items] == [post_id]
    assert [status.state for status in chirp.projections()] == [OK, OK]
    chirp.close()


def test_catch_up_each_goes_on_past_a_failing_projection_then_raises() -> None:
    """The feed workers catch up the catalog and the feeds together: an event
    the first fails on does not hold the second back."""
    clock = Clock()
    chirp, projector, app = poisoned_chirp(clock)
    chirp.read_own_writes = False
    chirp.register("alice")
    chirp.post("alice", "poison")
    chirp.register("bob")
    poisoned, healthy = chirp.feed_follower, chirp.catalog_follower
    with pytest.raises(Broken):
        catch_up_each([poisoned, healthy])
    assert healthy.position == app.recorder.max_notification_id()
    assert poisoned.position == 1 and poisoned.failure is not None
    projector.broken = False
    catch_up_each([poisoned, healthy])
    assert poisoned.position == app.recorder.max_notification_id()


class FailingCatalog(InMemoryCatalog):
    """A catalog whose store refuses writes while ``down`` (a locked SQLite
    file, a PostgreSQL server restarting)."""

    down = False

    def add_post(self, post: PostView, tracking: Tracking) -> None:
        if self.down:
            raise Broken("the catalog's store is unavailable")
        super().add_post(post, tracking)


def test_a_catalog_that_cannot_take_a_post_does_not_fail_the_post() -> None:
    app = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    catalog = FailingCatalog()
    chirp = Chirp(app, catalog, FeedProjector(InMemoryFeedProvider(), POPOTrackingRecorder()))
    chirp.register("alice")
    catalog.down = True
    post_id = chirp.post("alice", "stored whatever the catalog says")
    assert app.get_post(post_id).text == "stored whatever the catalog says"
    chirp.sync()  # the catalog fails to take it, quietly
    assert chirp.catalog_follower.status().state == RETRYING
    catalog.down = False
    chirp.sync()
    assert [status.state for status in chirp.projections()] == [OK, OK]
    assert chirp.queries.post(post_id).text == "stored whatever the catalog says"

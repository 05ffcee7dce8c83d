"""Each projection runs once, in the process holding its lease; commands do
not wait for it; reads wait for their own writes, however the projection runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.inmemory.feeds import InMemoryFeedProvider
from adapters.sqlite.lease import SQLiteLease
from application.commands import ChirpApplication
from application.leases import HeldElsewhere
from application.log_follower import LogFollower
from application.projectors import FeedProjector
from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings

WAIT_SECONDS = 10.0


class CountingProjector(FeedProjector):
    """The feed projector, counting the events it applies."""

    def __init__(self, provider: InMemoryFeedProvider, tracking: POPOTrackingRecorder) -> None:
        super().__init__(provider, tracking)
        self.applied = 0

    def process(self, event: DomainEventProtocol[Any], tracking: Tracking) -> None:
        self.applied += 1
        super().process(event, tracking)


def memory_app() -> ChirpApplication:
    return ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def test_a_command_only_stores_its_event_and_the_next_read_shows_it() -> None:
    app = memory_app()
    projector = CountingProjector(InMemoryFeedProvider(), POPOTrackingRecorder())
    chirp = Chirp(app, InMemoryCatalog(), projector)
    chirp.register("alice")
    post_id = chirp.post("alice", "hello")
    assert projector.applied == 0  # the command waited for no projection
    assert app.last_saved_position() == app.recorder.max_notification_id()
    assert [item.post_id for item in chirp.queries.profile_feed("alice").items] == [post_id]
    assert projector.applied == 2


def test_only_the_holder_of_the_lease_projects(tmp_path: Path) -> None:
    app = memory_app()
    tracking = POPOTrackingRecorder()  # one position, as processes share one
    provider = InMemoryFeedProvider()
    projectors = [CountingProjector(provider, tracking) for _ in range(3)]
    followers = [
        LogFollower(app, projector, name="feeds", lease=SQLiteLease(tmp_path / "feeds.lease"))
        for projector in projectors
    ]
    for follower in followers:
        follower.start(poll_interval=0.01)
    try:
        for name in ("alice", "bob", "carol"):
            app.register(name)
        for follower in followers:
            follower.nudge()
        head = app.recorder.max_notification_id() or 0
        assert all(follower.wait_for(head, WAIT_SECONDS) for follower in followers)
        counts = sorted(projector.applied for projector in projectors)
        assert counts == [0, 0, head]
    finally:
        for follower in followers:
            follower.stop()


def test_a_reader_without_the_lease_waits_for_the_holder() -> None:
    app = memory_app()
    tracking = POPOTrackingRecorder()
    provider = InMemoryFeedProvider()
    holder = LogFollower(app, CountingProjector(provider, tracking), name="feeds")
    watcher_projector = CountingProjector(provider, tracking)
    watcher = LogFollower(app, watcher_projector, name="feeds", lease=HeldElsewhere())
    app.register("alice")
    head = app.recorder.max_notification_id() or 0
    assert not watcher.wait_for(head, timeout=0.05)  # nobody projects: it gives up
    holding = threading.Thread(target=holder.catch_up)
    holding.start()
    try:
        assert watcher.wait_for(head, WAIT_SECONDS)
    finally:
        holding.join()
    assert watcher_projector.applied == 0


def test_a_process_without_the_catalog_lease_reads_its_own_post(tmp_path: Path) -> None:
    """Two processes on one data directory: the first runs the catalog; the
    second posts, and its next read shows the post, projected by the first."""
    data_dir = tmp_path / "data"
    first = build_chirp(Settings(data_dir=data_dir))
    second = build_chirp(Settings(data_dir=data_dir))
    try:
        first.start_following(poll_interval=0.01)
        assert first.catalog_follower.lease.try_acquire()
        assert not second.catalog_follower.lease.try_acquire()
        second.register("alice")
        post_id = second.post("alice", "hello from the second process")
        page = second.queries.profile_feed("alice")
        assert [item.post_id for item in page.items] == [post_id]
        assert second.queries.user("alice").posts_count == 1
    finally:
        second.close()
        first.close()


class GatedProjector(CountingProjector):
    """Stops before its ``gated``-th event until ``gate`` is set: a
    projection busy with a long backlog."""

    def __init__(self, provider: InMemoryFeedProvider, tracking: POPOTrackingRecorder) -> None:
        super().__init__(provider, tracking)
        self.gated = 0
        self.gate = threading.Event()
        self.reached_gate = threading.Event()

    def process(self, event: DomainEventProtocol[Any], tracking: Tracking) -> None:
        if tracking.notification_id == self.gated:
            self.reached_gate.set()
            assert self.gate.wait(WAIT_SECONDS)
        super().process(event, tracking)


def test_a_reader_projects_no_further_than_its_own_write() -> None:
    app = memory_app()
    projector = CountingProjector(InMemoryFeedProvider(), POPOTrackingRecorder())
    follower = LogFollower(app, projector, name="feeds")
    for name in ("alice", "bob", "carol", "dave"):
        app.register(name)
    assert follower.wait_for(2, WAIT_SECONDS)
    assert (follower.position, projector.applied) == (2, 2)  # not the whole log


def test_a_reader_does_not_wait_past_its_timeout_for_a_busy_projection() -> None:
    """The process's own thread is deep in a backlog: a reader waiting for
    a later write gives up at its timeout and shows what there is."""
    app = memory_app()
    projector = GatedProjector(InMemoryFeedProvider(), POPOTrackingRecorder())
    follower = LogFollower(app, projector, name="feeds")
    for name in ("alice", "bob", "carol"):
        app.register(name)
    projector.gated = 2
    busy = threading.Thread(target=follower.try_catch_up)
    busy.start()
    assert projector.reached_gate.wait(WAIT_SECONDS)
    answers: list[bool] = []
    reader = threading.Thread(target=lambda: answers.append(follower.wait_for(3, timeout=0.05)))
    reader.start()
    reader.join(WAIT_SECONDS)
    finished_while_busy = not reader.is_alive()
    projector.gate.set()
    busy.join(WAIT_SECONDS)
    reader.join(WAIT_SECONDS)
    assert finished_while_busy and answers == [False]
    assert follower.wait_for(3, WAIT_SECONDS)

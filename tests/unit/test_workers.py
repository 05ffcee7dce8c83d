"""The feed projection on Dramatiq, with a ``StubBroker`` and a real ``Worker``:
large fan-outs go out in chunks that the worker copies, failed chunks are
retried without duplicating anything, late chunks add nothing, celebrities
send none, and commands in Dramatiq mode are projected by the worker."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.inmemory.feeds import InMemoryFeedProvider
from application.commands import ChirpApplication
from application.feed_names import timeline_feed, user_feed
from application.feeds import Activity, FeedId, FeedProvider
from application.projectors import FeedProjector
from application.service import Chirp
from chirp.settings import ConfigurationError, Settings
from chirp.workers import FeedWorkers

QUEUE = "chirp-feeds-test"


@pytest.fixture
def broker() -> Iterator[StubBroker]:
    stub = StubBroker()
    yield stub
    stub.close()


def start_worker(stub: StubBroker) -> Worker:
    worker = Worker(stub, worker_timeout=100, worker_threads=4)
    worker.start()
    return worker


def workers_on(stub: StubBroker, provider: FeedProvider) -> FeedWorkers:
    workers = FeedWorkers(stub, queue_name=QUEUE, max_retries=3, min_backoff=10, max_backoff=40)
    workers.bind(provider, lambda: None)
    return workers


def follow_alice(provider: FeedProvider, count: int) -> list[FeedId]:
    readers = [timeline_feed(f"reader{i}") for i in range(count)]
    for reader in readers:
        provider.follow(reader, user_feed("alice"))
    return readers


def post(number: int) -> Activity:
    return Activity(
        actor="alice",
        verb="tweet",
        object=f"post:{number}",
        foreign_id=f"post:{number}",
        time=datetime(2025, 1, 1, 12, 0, number),
    )


def projector(provider: FeedProvider, workers: FeedWorkers | None) -> FeedProjector:
    return FeedProjector(
        provider, POPOTrackingRecorder(), fan_out=workers.fan_out if workers else None
    )


def test_a_post_to_2500_followers_goes_out_in_3_chunks_that_the_worker_copies(
    broker: StubBroker,
) -> None:
    provider = InMemoryFeedProvider()
    workers = workers_on(broker, provider)
    readers = follow_alice(provider, 2500)
    reference = InMemoryFeedProvider()
    follow_alice(reference, 2500)
    for number in (1, 2):
        projector(provider, workers).post(user_feed("alice"), post(number))
        projector(reference, None).post(user_feed("alice"), post(number))
    assert broker.queues[QUEUE].qsize() == 6
    assert provider.read(readers[0]) == []  # nothing copied before a worker runs
    worker = start_worker(broker)
    try:
        broker.join(QUEUE)
    finally:
        worker.stop()
    for reader in readers:
        assert provider.read(reader) == reference.read(reader)
    assert [item.object for item in provider.read(readers[-1])] == ["post:2", "post:1"]


class FailingOnce(InMemoryFeedProvider):
    """Copies the first half of a chunk, then fails, on the first call only."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def copy_to_followers(
        self, feed: FeedId, activity_id: str, followers: Sequence[FeedId]
    ) -> None:
        self.calls += 1
        if self.calls == 1:
            super().copy_to_followers(feed, activity_id, followers[: len(followers) // 2])
            raise ConnectionError("feeds went away mid-chunk")
        super().copy_to_followers(feed, activity_id, followers)


def test_a_failed_chunk_is_retried_and_adds_nothing_twice(broker: StubBroker) -> None:
    provider = FailingOnce()
    workers = workers_on(broker, provider)
    readers = follow_alice(provider, 1500)
    projector(provider, workers).post(user_feed("alice"), post(1))
    worker = start_worker(broker)
    try:
        broker.join(QUEUE)
    finally:
        worker.stop()
    assert provider.calls == 3  # two chunks, one of them twice
    for reader in readers:
        assert [item.object for item in provider.read(reader)] == ["post:1"]


def test_a_chunk_that_arrives_after_the_delete_adds_nothing(broker: StubBroker) -> None:
    provider = InMemoryFeedProvider()
    workers = workers_on(broker, provider)
    readers = follow_alice(provider, 1200)
    projector(provider, workers).post(user_feed("alice"), post(1))
    provider.remove_activity(user_feed("alice"), "post:1")
    provider.unfollow(readers[1], user_feed("alice"))
    projector(provider, workers).post(user_feed("alice"), post(2))
    worker = start_worker(broker)
    try:
        broker.join(QUEUE)
    finally:
        worker.stop()
    assert [item.object for item in provider.read(readers[0])] == ["post:2"]
    assert provider.read(readers[1]) == []


def test_a_celebrity_post_sends_no_chunks_and_reads_the_same(broker: StubBroker) -> None:
    provider = InMemoryFeedProvider(celebrity_threshold=1000)
    workers = workers_on(broker, provider)
    readers = follow_alice(provider, 2500)
    projector(provider, workers).post(user_feed("alice"), post(1))
    assert broker.queues[QUEUE].qsize() == 0
    assert provider.fans_out_on_read(user_feed("alice"))
    for reader in (readers[0], readers[-1]):
        assert [item.object for item in provider.read(reader)] == ["post:1"]


def test_commands_in_dramatiq_mode_are_projected_by_the_worker(broker: StubBroker) -> None:
    provider = InMemoryFeedProvider()
    workers = FeedWorkers(broker, queue_name=QUEUE, max_retries=0)
    feed_projector = FeedProjector(
        provider, POPOTrackingRecorder(), fan_out=workers.fan_out, fan_out_chunk=2
    )
    chirp = Chirp(
        ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}),
        InMemoryCatalog(),
        feed_projector,
        request_feed_projection=workers.request_projection,
    )
    workers.bind(provider, chirp.feed_follower.catch_up)
    worker = start_worker(broker)
    try:
        for name in ("alice", "bob", "carol", "dave", "eve"):
            chirp.register(name)
        for name in ("bob", "carol", "dave", "eve"):
            chirp.follow(name, "alice")
        chirp.post("alice", "hello #chirp")
        broker.join(QUEUE)
        for name in ("alice", "bob", "carol", "dave", "eve"):
            assert [item.text for item in chirp.queries.home_timeline(name).items] == [
                "hello #chirp"
            ]
    finally:
        worker.stop()
        chirp.close()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CHIRP_PROJECTION": "celery"}, "CHIRP_PROJECTION"),
        ({"CHIRP_PROJECTION": "dramatiq"}, "FEED_PROVIDER=redis"),
        ({"CHIRP_FANOUT_CHUNK": "0"}, "CHIRP_FANOUT_CHUNK"),
        ({"CHIRP_FANOUT_CHUNK": "5001"}, "CHIRP_FANOUT_CHUNK"),
        ({"CHIRP_CELEBRITY_THRESHOLD": "-1"}, "CHIRP_CELEBRITY_THRESHOLD"),
    ],
)
def test_bad_worker_settings_say_which(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(environ)


def test_worker_settings_default_to_in_process_chunks_of_1000_and_10000_for_celebrities() -> None:
    settings = Settings.from_env({})
    assert (settings.projection, settings.fan_out_chunk, settings.celebrity_threshold) == (
        "inprocess",
        1000,
        10_000,
    )

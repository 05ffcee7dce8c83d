"""The feed workers on the real Redis broker and Redis feeds.

Each test uses its own broker namespace, queue and feed namespace on the
server at ``REDIS_URL``, and deletes them when it ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from eventsourcing.popo import POPOTrackingRecorder
from redis.exceptions import LockError

from adapters.inmemory import InMemoryFeedProvider
from adapters.redis import RedisFeedProvider
from adapters.redis.catalog_cache import RedisCatalogCache
from application.feed_names import timeline_feed, user_feed
from application.feeds import Activity, Follow
from application.projectors import FeedProjector
from chirp.settings import Settings
from chirp.workers import FeedWorkers, RenewedLock, configure_broker
from tests.services import require_redis
from tests.workers import running_workers

pytestmark = pytest.mark.redis


@pytest.fixture
def client() -> redis.Redis:
    return redis.Redis.from_url(require_redis())


def delete_namespace(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


@pytest.fixture
def namespace(client: redis.Redis) -> Iterator[str]:
    name = f"workers-{uuid.uuid4().hex}"
    yield name
    delete_namespace(client, name)


def test_a_post_fans_out_in_chunks_through_real_redis_queues(
    client: redis.Redis, namespace: str
) -> None:
    broker = RedisBroker(url=require_redis(), namespace=f"{namespace}-dramatiq")  # type: ignore[no-untyped-call]
    provider = RedisFeedProvider(client, namespace=namespace)
    workers = FeedWorkers(broker, queue_name=f"{namespace}-q", max_retries=3, min_backoff=10)
    workers.bind(provider, lambda: None)
    readers = [timeline_feed(f"reader{i}") for i in range(2500)]
    provider.follow_many([Follow(reader, user_feed("alice")) for reader in readers])
    activity = Activity(
        actor="alice", verb="tweet", object="post:1", foreign_id="post:1", time=datetime(2025, 1, 1)
    )
    FeedProjector(provider, POPOTrackingRecorder(), fan_out=workers.fan_out).post(
        user_feed("alice"), activity
    )
    assert client.llen(f"{namespace}-dramatiq:{namespace}-q") == 3
    reference = InMemoryFeedProvider()
    reference.follow_many([Follow(reader, user_feed("alice")) for reader in readers])
    reference.add_activity(user_feed("alice"), activity)
    worker = Worker(broker, worker_timeout=100, worker_threads=3)
    worker.start()
    try:
        broker.join(workers.queue_name, timeout=20_000)
    finally:
        worker.stop()
        broker.close()
    for reader in (readers[0], readers[1234], readers[-1]):
        assert provider.read(reader) == reference.read(reader)
    # Every timeline's cache holds it: the chunks, not a read-time merge, put it there.
    cached = [f"{namespace}:{{{reader}}}:tl" for reader in readers]
    pipe = client.pipeline(transaction=False)
    for key in cached:
        pipe.zcard(key)
    assert set(pipe.execute()) == {1}


def test_commands_are_projected_by_a_worker_process_sharing_the_event_store(
    client: redis.Redis, namespace: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        feed_provider="redis",
        redis_url=require_redis(),
        redis_namespace=namespace,
        projection="dramatiq",
        fan_out_chunk=2,
    )
    with running_workers(settings) as running:
        web = running.web
        for name in ("alice", "bob", "carol", "dave", "eve"):
            web.register(name)
        for name in ("bob", "carol", "dave", "eve"):
            web.follow(name, "alice")
        hello = web.post("alice", "hello from a worker")
        running.join()
        for name in ("alice", "bob", "carol", "dave", "eve"):
            assert [item.text for item in web.queries.home_timeline(name).items] == [
                "hello from a worker"
            ]
        # Pages read the catalog through its Redis cache, which the web's own
        # catalog projection keeps: a new name and a deletion show at once,
        # before the workers have projected the feeds.
        assert isinstance(web.catalog, RedisCatalogCache)
        web.update_profile("alice", "Alice Liddell", "")
        [item] = web.queries.home_timeline("bob").items
        assert item.author.display_name == "Alice Liddell"
        web.delete_post(hello, by="alice")
        assert web.queries.home_timeline("bob").items == []
        running.join()
        assert web.queries.home_timeline("bob").items == []


def test_configure_broker_sets_the_global_broker() -> None:
    import dramatiq

    client = redis.Redis.from_url(require_redis())
    broker = configure_broker(client, namespace=f"unused-{uuid.uuid4().hex}")
    try:
        assert dramatiq.get_broker() is broker
        assert broker.client is client
    finally:
        broker.close()


def test_the_worker_command_runs_until_terminated(namespace: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CHIRP_DATA_DIR": str(tmp_path),
        "FEED_PROVIDER": "redis",
        "REDIS_URL": require_redis(),
        "CHIRP_REDIS_NAMESPACE": namespace,
        "CHIRP_PROJECTION": "dramatiq",
    }
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "chirp.cli", "worker", "--threads", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "chirp worker: 2 threads" in process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- the catch-up lock ----------------------------------------------------------

LEASE = 0.3  # seconds: short, so that a test outlives several leases


def test_a_holder_keeps_the_lock_past_many_leases(client: redis.Redis, namespace: str) -> None:
    """A catch-up that takes longer than the lease keeps it: its holder's
    thread renews it, so no second catch-up starts beside it."""
    name = f"{namespace}:lock"
    with RenewedLock(client, name, lease=LEASE, wait=1):
        outlived = time.monotonic() + 4 * LEASE
        while time.monotonic() < outlived:  # the holder at work, for four leases
            assert not client.lock(name, blocking_timeout=0).acquire()
            assert client.pttl(name) > 0
            time.sleep(LEASE / 10)
    assert client.exists(name) == 0  # released
    with RenewedLock(client, name, lease=LEASE, wait=0):
        pass


def test_a_holder_that_died_frees_the_lock_within_a_lease(
    client: redis.Redis, namespace: str
) -> None:
    """A worker killed while holding the lock renews it no more: the next
    one waits for its lease to run out, not for a fixed long timeout."""
    name = f"{namespace}:lock"
    dead = client.lock(name, timeout=LEASE, thread_local=False)
    assert dead.acquire(blocking=False)  # and then its process is gone: nobody renews
    with RenewedLock(client, name, lease=LEASE, wait=10 * LEASE):
        assert not dead.owned()
        assert client.pttl(name) > 0


def test_a_lock_held_past_the_wait_is_an_error_the_message_is_retried_for(
    client: redis.Redis, namespace: str
) -> None:
    name = f"{namespace}:lock"
    with RenewedLock(client, name, lease=LEASE, wait=1):
        waiting = RenewedLock(client, name, lease=LEASE, wait=2 * LEASE)
        with pytest.raises(LockError, match=r"still held after 0\.6 s"), waiting:
            pass  # pragma: no cover - never entered


def test_a_lease_lost_anyway_stops_the_work_at_its_next_check(
    client: redis.Redis, namespace: str
) -> None:
    """A failover can lose the lock's key: another worker takes the lock,
    the holder does not take it back, and its next check (after each batch
    of a catch-up) stops its work."""
    name = f"{namespace}:lock"
    lease = RenewedLock(client, name, lease=LEASE, wait=1)
    with lease:
        lease.check()  # held: goes on
        client.delete(name)
        other = client.lock(name, timeout=10)
        assert other.acquire(blocking=False)
        deadline = time.monotonic() + 10 * LEASE
        while True:
            try:
                lease.check()
            except LockError as error:
                assert "lost the lock" in str(error)
                break
            assert time.monotonic() < deadline, "the renewing thread never found the lease lost"
            time.sleep(LEASE / 10)
    assert other.owned()  # neither renewed nor released by the first holder

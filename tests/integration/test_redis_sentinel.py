"""Feeds on a Redis replica set watched by Sentinel, through a failover.

A primary, a replica and a sentinel run for each test (tests/redis_sentinel.py).
Chirp is wired with ``REDIS_URL=redis+sentinel://...`` and an event store of
its own (SQLite). The primary is then killed; the sentinel promotes the
replica, and Chirp, with the clients it already has, goes on with the new
primary. The projector's position lives beside the feeds, so writes the
replica had not received when the primary died (asynchronous replication)
are projected again from the log.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from domain.errors import TweetNotFound
from tests.redis_sentinel import ReplicaSet, start_replica_set
from tests.services import require_redis_server
from tests.workers import running_workers

pytestmark = pytest.mark.redis


@pytest.fixture
def replica_set() -> Iterator[ReplicaSet]:
    started = start_replica_set(require_redis_server())
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def chirp(replica_set: ReplicaSet, tmp_path: Path) -> Iterator[Chirp]:
    settings = Settings(
        data_dir=tmp_path,
        feed_provider="redis",
        redis_url=replica_set.sentinel_url,
        redis_namespace="failover",
    )
    made = build_chirp(settings)
    try:
        made.register("alice")
        made.register("bob")
        made.follow("bob", "alice")
        yield made
    finally:
        made.close()


def home(chirp: Chirp, username: str) -> list[str]:
    return [item.text for item in chirp.queries.home_timeline(username).items]


def replicated(replica_set: ReplicaSet) -> None:
    """Everything written so far has reached the replica."""
    primary = replica_set.client(replica_set.primary_port)
    try:
        assert primary.wait(1, 10_000) == 1
    finally:
        primary.close()


def test_feeds_carry_on_with_the_promoted_replica(replica_set: ReplicaSet, chirp: Chirp) -> None:
    chirp.post("alice", "before the failover")
    replicated(replica_set)

    replica_set.kill_primary()
    replica_set.wait_for_promotion()

    chirp.post("alice", "after the failover")
    assert home(chirp, "bob") == ["after the failover", "before the failover"]
    promoted = replica_set.client(replica_set.replica_port)
    assert promoted.execute_command("ROLE")[0] == b"master"  # type: ignore[no-untyped-call]
    assert promoted.dbsize() > 0  # the feeds are read from it


def test_writes_the_replica_missed_are_projected_again(
    replica_set: ReplicaSet, chirp: Chirp
) -> None:
    chirp.post("alice", "replicated")
    doomed = chirp.post("alice", "deleted after the replica was cut off")
    # Read once: the catalog cache now holds both posts and alice's name.
    assert home(chirp, "bob") == ["deleted after the replica was cut off", "replicated"]
    replicated(replica_set)
    # The replica stalls (frozen, as an overloaded machine would be) and the
    # primary drops it: what follows reaches the primary only, and is lost
    # with it (Redis replicates asynchronously).
    replica = replica_set.processes[1]
    replica.send_signal(signal.SIGSTOP)
    try:
        primary = replica_set.client(replica_set.primary_port)
        assert primary.client_kill_filter(_type="replica") == 1
        primary.close()
        chirp.post("alice", "posted after the replica was cut off")
        chirp.delete_post(doomed, by="alice")
        chirp.unfollow("bob", "alice")
        chirp.update_profile("alice", "Alice Liddell", "")
        replica_set.kill_primary()
    finally:
        replica.send_signal(signal.SIGCONT)
    replica_set.wait_for_promotion()
    promoted = replica_set.client(replica_set.replica_port)
    view = promoted.get(f"failover:{{catalog}}:p:{doomed.hex}")
    assert view is not None and view != b"-"  # the deletion's tombstone was lost

    # The promoted replica holds the feeds as they were before the lost
    # writes, and the projector's position with them: the next catch-up
    # projects them again from the event log. The catalog's cache sees a new
    # server (a new replication id) and forgets what it held.
    chirp.sync()
    assert home(chirp, "bob") == []  # unfollowed
    chirp.follow("bob", "alice")
    page = chirp.queries.home_timeline("bob").items
    assert [item.text for item in page] == ["posted after the replica was cut off", "replicated"]
    assert {item.author.display_name for item in page} == {"Alice Liddell"}
    with pytest.raises(TweetNotFound):
        chirp.queries.post(doomed)


def test_feed_workers_carry_on_with_the_promoted_replica(
    replica_set: ReplicaSet, tmp_path: Path
) -> None:
    """The Dramatiq broker, its queue and the workers' lock live in the
    replica set too (``REDIS_BROKER_URL`` defaults to ``REDIS_URL``): after
    the failover the worker's consumer reconnects through the sentinel and
    the next messages are projected."""
    settings = Settings(
        data_dir=tmp_path,
        feed_provider="redis",
        redis_url=replica_set.sentinel_url,
        redis_namespace="failover-workers",
        projection="dramatiq",
        fan_out_chunk=2,
    )
    with running_workers(settings, threads=2) as running:
        web = running.web
        for name in ("alice", "bob", "carol", "dave"):
            web.register(name)
        for name in ("bob", "carol", "dave"):
            web.follow(name, "alice")
        web.post("alice", "before the failover")
        running.join()
        replicated(replica_set)

        replica_set.kill_primary()
        replica_set.wait_for_promotion()

        web.post("alice", "after the failover")
        running.join(timeout_ms=30_000)
        for name in ("bob", "carol", "dave"):
            assert home(web, name) == ["after the failover", "before the failover"]

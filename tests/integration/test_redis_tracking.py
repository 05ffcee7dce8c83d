"""RedisTrackingRecorder against the real Redis server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from eventsourcing.persistence import IntegrityError, Tracking

from adapters.redis.tracking import RedisTrackingRecorder
from tests.services import require_redis


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(require_redis())
    yield connection
    connection.close()


@pytest.fixture
def namespace(client: redis.Redis) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex}"
    yield name
    for key in client.scan_iter(match=f"{name}:*"):
        client.unlink(key)


def test_the_position_starts_empty_and_only_moves_forward(
    client: redis.Redis, namespace: str
) -> None:
    recorder = RedisTrackingRecorder(client, namespace)
    assert recorder.max_tracking_id("chirp") is None
    recorder.insert_tracking(Tracking("chirp", 3))
    recorder.insert_tracking(Tracking("chirp", 7))
    assert recorder.max_tracking_id("chirp") == 7
    for stale in (7, 5):
        with pytest.raises(IntegrityError):
            recorder.insert_tracking(Tracking("chirp", stale))
    assert recorder.max_tracking_id("chirp") == 7
    assert recorder.has_tracking_id("chirp", 6)
    assert not recorder.has_tracking_id("chirp", 8)


def test_positions_are_per_application_and_namespace(client: redis.Redis, namespace: str) -> None:
    first = RedisTrackingRecorder(client, namespace)
    other_namespace = RedisTrackingRecorder(client, namespace + "-other")
    first.insert_tracking(Tracking("chirp", 2))
    assert first.max_tracking_id("another") is None
    assert other_namespace.max_tracking_id("chirp") is None
    for key in client.scan_iter(match=f"{namespace}-other:*"):
        client.unlink(key)


def test_losing_redis_data_loses_the_position_too(client: redis.Redis, namespace: str) -> None:
    recorder = RedisTrackingRecorder(client, namespace)
    recorder.insert_tracking(Tracking("chirp", 42))
    for key in client.scan_iter(match=f"{namespace}:*"):
        client.unlink(key)
    assert recorder.max_tracking_id("chirp") is None


def test_a_thread_records_only_from_the_position_it_last_saw(
    client: redis.Redis, namespace: str
) -> None:
    """A position can move back under a catch-up (a failover lost its last
    moves; the namespace was emptied to rebuild): the catch-up's next record
    fails instead of carrying the position past what must be projected
    again, and once it has read the position again it goes on from there.
    A position moved forward by another process is the usual "already
    passed"."""
    first = RedisTrackingRecorder(client, namespace)
    second = RedisTrackingRecorder(client, namespace)
    key = f"{namespace}:tracking:chirp"
    for position in range(1, 6):
        first.insert_tracking(Tracking("chirp", position))
    assert second.max_tracking_id("chirp") == 5

    client.set(key, 3)  # a failover lost the position's last two moves
    with pytest.raises(IntegrityError, match="moved back"):
        second.insert_tracking(Tracking("chirp", 6))
    assert second.max_tracking_id("chirp") == 3
    second.insert_tracking(Tracking("chirp", 4))

    client.delete(key)  # emptied, to rebuild every feed
    with pytest.raises(IntegrityError, match="moved back"):
        second.insert_tracking(Tracking("chirp", 5))
    assert second.max_tracking_id("chirp") is None
    second.insert_tracking(Tracking("chirp", 1))

    with pytest.raises(IntegrityError, match="moved back"):
        first.insert_tracking(Tracking("chirp", 2))  # it last saw 5
    assert first.max_tracking_id("chirp") == 1
    first.insert_tracking(Tracking("chirp", 2))
    with pytest.raises(IntegrityError, match="already passed"):
        second.insert_tracking(Tracking("chirp", 2))
    assert second.max_tracking_id("chirp") == 2

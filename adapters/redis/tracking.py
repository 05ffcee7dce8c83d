"""RedisTrackingRecorder: a projection's position in the event log, kept in Redis.

Kept beside the feeds it describes, so the two are lost together: if Redis
loses its data, the position goes back to nothing and the feed projector
rebuilds every feed from event 0 by itself, instead of trusting a position
kept elsewhere for feeds that no longer exist. On Redis Cluster the position
is one key on one shard while the feeds spread over all of them, so a look
at it checks (once a second per process), through :class:`ShardHistory`,
that every shard still holds the feeds up to it (a shard that failed over
or restarted may not), and a catch-up that read it before it was moved back
cannot carry it forward after (its thread's insert fails: it reads the
position again).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from adapters.redis.feeds import cluster_unreachable
from adapters.redis.shard_history import ShardHistory
from application.feeds import FeedUnavailableError

# Sets the position only if it moves forward; answers 1 when it did.
_ADVANCE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local proposed = tonumber(ARGV[1])
if proposed <= current then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


@contextmanager
def _unavailable_when_unreachable() -> Iterator[None]:
    """Redis (or a cluster: redis-py's cluster client raises errors of its
    own) out of reach becomes FeedUnavailableError."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise FeedUnavailableError(f"Redis is unavailable: {error}") from error
    except RedisClusterException as error:
        if not cluster_unreachable(error):
            raise
        raise FeedUnavailableError(f"Redis Cluster is unavailable: {error}") from error


class RedisTrackingRecorder(TrackingRecorder):
    def __init__(self, client: redis.Redis | RedisCluster, namespace: str = "chirp") -> None:
        self.client = client
        self.namespace = namespace
        self._advance: Any = client.register_script(_ADVANCE)
        self._shard_histories: dict[str, ShardHistory] = {}
        # On a cluster, the position's generation each thread last read, per
        # position key: its catch-up advances only within that generation.
        self._seen = threading.local()

    def _key(self, application_name: str) -> str:
        return f"{self.namespace}:tracking:{application_name}"

    def insert_tracking(self, tracking: Tracking) -> None:
        key = self._key(tracking.application_name)
        generation = self._generations().get(key)
        with _unavailable_when_unreachable():
            if isinstance(self.client, RedisCluster) and generation is not None:
                history = self._shard_history(self.client, key)
                moved = history.advance(tracking.notification_id, generation)
            else:
                moved = self._advance(keys=[key], args=[tracking.notification_id])
        if moved < 0:
            raise IntegrityError(
                f"the position of {tracking.application_name!r} was moved back since it was "
                f"read (a shard lost feed writes): {tracking.notification_id} not recorded"
            )
        if not moved:
            raise IntegrityError(
                f"position {tracking.notification_id} of {tracking.application_name!r} "
                "was already passed"
            )

    def max_tracking_id(self, application_name: str) -> int | None:
        key = self._key(application_name)
        with _unavailable_when_unreachable():
            if isinstance(self.client, RedisCluster):
                position, generation = self._shard_history(self.client, key).checked_position()
                self._generations()[key] = generation
                return position
            value = self.client.get(key)
        return None if value is None else int(value)

    def _generations(self) -> dict[str, int]:
        generations: dict[str, int] | None = getattr(self._seen, "generations", None)
        if generations is None:
            generations = self._seen.generations = {}
        return generations

    def _shard_history(self, cluster: RedisCluster, key: str) -> ShardHistory:
        if key not in self._shard_histories:
            self._shard_histories[key] = ShardHistory(cluster, key)
        return self._shard_histories[key]

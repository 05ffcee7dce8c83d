"""RedisTrackingRecorder: a projection's position in the event log, kept in Redis.

Kept beside the feeds it describes, so the two are lost together: if Redis
loses its data, the position goes back to nothing and the feed projector
rebuilds every feed from event 0 by itself, instead of trusting a position
kept elsewhere for feeds that no longer exist. On Redis Cluster the position
is one key on one shard while the feeds spread over all of them, so a look
at it checks (once a second per process), through :class:`ShardHistory`,
that every shard still holds the feeds up to it (a shard that failed over
or restarted may not), and moves it back if one does not.

A position can thus move back: a Sentinel failover that lost its last
moves, a cluster shard's loss, a namespace emptied to rebuild. So a thread
records progress only from the position it last saw (compare and set): a
catch-up that read the position before it moved back fails its next record
(IntegrityError) and reads the position again, instead of carrying it
forward past what must be projected again.
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

# Moves the position (KEYS[1]) forward to ARGV[1]: 1 when it moved, 0 when it
# was already there or past it.
_ADVANCE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local proposed = tonumber(ARGV[1])
if proposed <= current then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
# The same, from the position ARGV[2] only ('' for none): -1 when the
# position is elsewhere, behind ARGV[1], than where its caller last saw it.
_ADVANCE_FROM = """
local current = redis.call('GET', KEYS[1]) or ''
local proposed = tonumber(ARGV[1])
if proposed <= tonumber(current == '' and '0' or current) then return 0 end
if current ~= ARGV[2] then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
_NEVER_SEEN = object()


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
        self._advance_from: Any = client.register_script(_ADVANCE_FROM)
        self._shard_histories: dict[str, ShardHistory] = {}
        # The position each thread last saw, per key: it records from there.
        self._seen = threading.local()

    def _key(self, application_name: str) -> str:
        return f"{self.namespace}:tracking:{application_name}"

    def insert_tracking(self, tracking: Tracking) -> None:
        key, proposed = self._key(tracking.application_name), tracking.notification_id
        seen = self._last_seen().get(key, _NEVER_SEEN)
        with _unavailable_when_unreachable():
            if seen is _NEVER_SEEN:
                moved = int(self._advance(keys=[key], args=[proposed]))
            else:
                expected = "" if seen is None else seen
                moved = int(self._advance_from(keys=[key], args=[proposed, expected]))
        if moved < 0:
            raise IntegrityError(
                f"the position of {tracking.application_name!r} moved back since it was "
                f"read (from {seen}): {proposed} not recorded; read it again"
            )
        if not moved:
            raise IntegrityError(
                f"position {proposed} of {tracking.application_name!r} was already passed"
            )
        self._last_seen()[key] = proposed

    def max_tracking_id(self, application_name: str) -> int | None:
        key = self._key(application_name)
        with _unavailable_when_unreachable():
            if isinstance(self.client, RedisCluster):
                position = self._shard_history(self.client, key).checked_position()
            else:
                value = self.client.get(key)
                position = None if value is None else int(value)
        self._last_seen()[key] = position
        return position

    def _last_seen(self) -> dict[str, int | None]:
        seen: dict[str, int | None] | None = getattr(self._seen, "positions", None)
        if seen is None:
            seen = self._seen.positions = {}
        return seen

    def _shard_history(self, cluster: RedisCluster, key: str) -> ShardHistory:
        if key not in self._shard_histories:
            self._shard_histories[key] = ShardHistory(cluster, key)
        return self._shard_histories[key]

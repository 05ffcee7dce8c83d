"""Fixtures shared by the integration tests: a Redis Cluster of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster as ClusterClient

from adapters.redis.cluster import cluster_client
from tests.redis_cluster import RedisCluster, start_cluster
from tests.services import require_redis_server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """Three masters started from ``redis-server`` for this session (see
    tests/redis_cluster.py), killed and removed at its end. Skips (or fails,
    under CHIRP_REQUIRE_SERVICES=1 / CI=true) without the binary."""
    cluster = start_cluster(require_redis_server())
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_client(redis_cluster: RedisCluster) -> Iterator[ClusterClient]:
    """A ``redis.cluster.RedisCluster`` client of the session's cluster (bytes replies)."""
    client = cluster_client(redis_cluster.url)
    try:
        yield client
    finally:
        client.close()

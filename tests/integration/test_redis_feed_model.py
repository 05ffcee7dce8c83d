"""The feed model state machine (``tests/contract/feed_model.py``) with Chirp's
feeds in Redis: every feed read through the queries must equal the pure model
after every step, and a replay into a fresh namespace must equal the feeds
built incrementally.

Several variants: the production cap (800, never reached here, so timelines are
read from their caches), and a cap of 3 on every group, so nearly every page
goes past a cache and is merged from the followed feeds: copy limits, unfollows
and deletions must then come out exactly as the model (and the in-memory
provider) says; and the production cap with every post of an account with a
follower fanned out in chunks of one (``store_activity`` then
``copy_to_followers``); and hybrid fan-out (celebrity thresholds 0 and 1, the
latter with caps of 3), whose reads must not differ; and caps of 3 with the
pages read by RedisPageReader through the catalog's Redis cache (caps of 3,
and the production cap). Each run's namespaces are
deleted when it ends. The most crowded posts (``tests/contract/crowded_posts.py``)
go through the wiring, on the server and on a Redis Cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import cache

import pytest
import redis
from eventsourcing.popo import POPOTrackingRecorder
from hypothesis import HealthCheck, settings
from redis.cluster import RedisCluster

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.redis import RedisFeedProvider
from adapters.redis.catalog_cache import RedisCatalogCache
from adapters.redis.pages import RedisPageReader
from application.commands import ChirpApplication
from application.fanout import InProcessFanOut
from application.feed_names import HASHTAG, MENTIONS, TIMELINE, USER
from application.projectors import FeedProjector
from application.service import Chirp
from chirp.bootstrap import build_chirp, build_feed_provider
from chirp.settings import Settings
from tests.contract.crowded_posts import check_crowded_posts
from tests.contract.feed_model import COPY_LIMIT, make_machine
from tests.services import require_redis

pytestmark = pytest.mark.redis

LOW_CAP = 3


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(require_redis())


def machine_for(
    timeline_cap: int,
    capped_groups: frozenset[str],
    fan_out_chunk: int | None = None,
    celebrity_threshold: int | None = None,
    cluster_paths: bool = False,
    client: Callable[[], redis.Redis | RedisCluster] = _client,
    max_examples: int = 25,
    catalog_cache: bool = False,
) -> type:
    """A model machine on Redis; ``client`` gives the connection when a run
    starts (a ``RedisCluster`` for the real cluster). With ``catalog_cache``
    pages are enriched through ``RedisCatalogCache``, as the wiring does."""
    created: list[RedisFeedProvider] = []

    def provider() -> RedisFeedProvider:
        made = RedisFeedProvider(
            client(),
            namespace=f"model-{uuid.uuid4().hex}",
            timeline_cap=timeline_cap,
            capped_groups=capped_groups,
            celebrity_threshold=celebrity_threshold,
        )
        if cluster_paths:  # what it does on a Redis Cluster, on the single server
            made._cluster = True
        created.append(made)
        return made

    def build() -> Chirp:
        commands = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        feeds = provider()
        if fan_out_chunk is None:
            projector = FeedProjector(feeds, POPOTrackingRecorder(), COPY_LIMIT)
        else:
            projector = FeedProjector(
                feeds,
                POPOTrackingRecorder(),
                COPY_LIMIT,
                fan_out=InProcessFanOut(feeds),
                fan_out_chunk=fan_out_chunk,
            )
        if not catalog_cache:
            return Chirp(commands, InMemoryCatalog(), projector)
        # In the feeds' namespace, so clearing them clears it; pages read as wired.
        cached = RedisCatalogCache(InMemoryCatalog(), feeds.client, feeds.namespace)
        return Chirp(commands, cached, projector, page_reader=RedisPageReader(feeds, cached))

    base: type = make_machine(build, provider)

    class RedisChirpFeedsMachine(base):  # type: ignore[misc]
        def teardown(self) -> None:
            try:
                super().teardown()
            finally:
                while created:
                    created.pop().clear()

    RedisChirpFeedsMachine.TestCase.settings = settings(
        max_examples=max_examples,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    return RedisChirpFeedsMachine


class _NeedsRedis:
    def setUp(self) -> None:
        require_redis()


ProductionCapMachine = machine_for(800, frozenset({TIMELINE}))
LowCapMachine = machine_for(LOW_CAP, frozenset({TIMELINE, USER, MENTIONS, HASHTAG}))
ChunkedMachine = machine_for(800, frozenset({TIMELINE}), fan_out_chunk=1)
ClusterPathsMachine = machine_for(
    LOW_CAP, frozenset({TIMELINE, USER, MENTIONS, HASHTAG}), cluster_paths=True
)
CatalogCachedMachine = machine_for(
    LOW_CAP, frozenset({TIMELINE, USER, MENTIONS, HASHTAG}), catalog_cache=True
)
CachedAt800Machine = machine_for(800, frozenset({TIMELINE}), catalog_cache=True)
HybridMachine = machine_for(800, frozenset({TIMELINE}), celebrity_threshold=0)
HybridLowCapMachine = machine_for(
    LOW_CAP, frozenset({TIMELINE, USER, MENTIONS, HASHTAG}), celebrity_threshold=1
)


class TestRedisChirpFeeds(_NeedsRedis, ProductionCapMachine.TestCase):  # type: ignore[name-defined,misc]
    pass


class TestRedisChirpFeedsPastTheCap(_NeedsRedis, LowCapMachine.TestCase):  # type: ignore[name-defined,misc]
    pass


class TestRedisChirpFeedsChunked(_NeedsRedis, ChunkedMachine.TestCase):  # type: ignore[name-defined,misc]
    pass


class TestRedisChirpFeedsClusterPaths(_NeedsRedis, ClusterPathsMachine.TestCase):  # type: ignore[name-defined,misc]
    pass


class TestRedisChirpFeedsCatalogCached(_NeedsRedis, CatalogCachedMachine.TestCase):  # type: ignore[name-defined,misc]
    pass


class TestRedisChirpFeedsCachedAt800(_NeedsRedis, CachedAt800Machine.TestCase):  # type: ignore[name-defined,misc]
    pass


class TestRedisChirpFeedsHybrid(_NeedsRedis, HybridMachine.TestCase):  # type: ignore[name-defined,misc]
    pass


class TestRedisChirpFeedsHybridPastTheCap(_NeedsRedis, HybridLowCapMachine.TestCase):  # type: ignore[name-defined,misc]
    pass


@pytest.mark.parametrize("on_cluster", [False, True], ids=["server", "cluster"])
def test_the_most_crowded_posts_reach_every_feed_they_name(
    on_cluster: bool, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_cluster").url if on_cluster else require_redis()
    namespaces: list[Settings] = []

    def build() -> Chirp:
        wiring = Settings(
            database_url="memory:",
            feed_provider="redis",
            redis_url=url,
            redis_cluster=on_cluster,
            redis_namespace=f"crowded-{uuid.uuid4().hex}",
        )
        namespaces.append(wiring)
        return build_chirp(wiring)

    try:
        check_crowded_posts(build)
    finally:
        for wiring in namespaces:
            provider, _ = build_feed_provider(wiring)
            assert isinstance(provider, RedisFeedProvider)
            provider.clear()

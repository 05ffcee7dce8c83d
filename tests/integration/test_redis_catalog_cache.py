"""``RedisCatalogCache`` against the real Redis server: the catalog contract
through the cache (over the in-memory catalog), then what the cache itself
promises: a warm page asks the catalog nothing and costs one round trip, and
no reader can put back a deleted post or an old display name, however its
read of the catalog interleaves with the write."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
import redis
from eventsourcing.persistence import Tracking
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.redis.catalog_cache import RedisCatalogCache
from application.catalog import AuthoredPost, Catalog, PostView, ShownPost, UserView
from application.feeds import FeedUnavailableError
from domain.tweet import TextEntity
from tests.contract.catalog_contract import CatalogContract
from tests.integration.test_redis_feed_provider import CountingConnection
from tests.services import require_redis

pytestmark = pytest.mark.redis

AT = datetime(2024, 3, 2, 8, 30, 15, 654321, tzinfo=UTC)


@pytest.fixture(scope="module")
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def namespaces(redis_url: str) -> Iterator[list[str]]:
    """Namespaces a test uses; their keys are deleted after it."""
    made: list[str] = []
    yield made
    client = redis.Redis.from_url(redis_url)
    for namespace in made:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=100_000))
        if keys:
            client.unlink(*keys)
    client.close()


class TestRedisCatalogCache(CatalogContract):
    @pytest.fixture(autouse=True)
    def _redis(self, redis_url: str, namespaces: list[str]) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.namespaces = namespaces

    def make_catalog(self) -> Catalog:
        namespace = f"test-cache-{uuid.uuid4().hex}"
        self.namespaces.append(namespace)
        return RedisCatalogCache(InMemoryCatalog(), self.client, namespace)


class TestRedisCatalogCacheOnACluster(CatalogContract):
    """The same contract on a real three-master Redis Cluster."""

    @pytest.fixture(autouse=True)
    def _cluster(self, redis_cluster_client: RedisCluster) -> Iterator[None]:
        self.client = redis_cluster_client
        self.made: list[str] = []
        yield
        for namespace in self.made:
            keys = list(self.client.scan_iter(match=f"{namespace}:*"))
            for key in keys:
                self.client.unlink(key)

    def make_catalog(self) -> Catalog:
        namespace = f"test-cache-{uuid.uuid4().hex}"
        self.made.append(namespace)
        return RedisCatalogCache(InMemoryCatalog(), self.client, namespace)


class CountingCatalog(InMemoryCatalog):
    """The in-memory catalog, counting the lookups a page can make; ``before_return``
    runs inside ``posts_with_authors`` after it has read, before it returns."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0
        self.before_return: Callable[[], None] | None = None

    def posts_with_authors(self, post_ids: Iterable[UUID]) -> dict[UUID, AuthoredPost]:
        self.lookups += 1
        found = super().posts_with_authors(post_ids)
        if self.before_return is not None:
            hook, self.before_return = self.before_return, None
            hook()
        return found

    def users(self, usernames: Iterable[str]) -> dict[str, UserView]:
        self.lookups += 1
        return super().users(usernames)


class Positions:
    def __init__(self) -> None:
        self.last = 0

    def __call__(self) -> Tracking:
        self.last += 1
        return Tracking("chirp", self.last)


@pytest.fixture
def setup(
    redis_url: str, namespaces: list[str]
) -> tuple[RedisCatalogCache, CountingCatalog, Positions]:
    namespace = f"test-cache-{uuid.uuid4().hex}"
    namespaces.append(namespace)
    inner = CountingCatalog()
    cache = RedisCatalogCache(inner, redis.Redis.from_url(redis_url), namespace)
    track = Positions()
    cache.add_user(UserView("Alice", "Alice Liddell", "", AT), track())
    return cache, inner, track


def post(author: str = "alice", text: str = "hello @bob #tea") -> PostView:
    entities = (TextEntity("mention", "bob", 6, 10), TextEntity("hashtag", "tea", 11, 15))
    return PostView(uuid.uuid4(), author, text, AT, entities)


def test_a_warm_page_asks_the_catalog_nothing_and_costs_one_round_trip(
    setup: tuple[RedisCatalogCache, CountingCatalog, Positions], redis_url: str
) -> None:
    cache, inner, track = setup
    posts = [post(text=f"post {n} ünïcode") for n in range(25)]
    for each in posts:
        inner.add_post(each, track())  # behind the cache's back: nothing cached yet
    ids = [p.id for p in posts]
    expected = {p.id: ShownPost(p, "Alice Liddell") for p in posts}
    assert cache.shown_posts(ids) == expected
    assert inner.lookups == 1  # the misses, in one lookup

    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    counted = RedisCatalogCache(inner, redis.Redis(connection_pool=pool), cache.namespace)
    counted.client.ping()  # the connection's handshake
    CountingConnection.reset()
    assert counted.shown_posts(ids) == expected
    assert inner.lookups == 1
    assert CountingConnection.sends == 1


def test_a_new_post_is_cached_as_it_is_added(
    setup: tuple[RedisCatalogCache, CountingCatalog, Positions],
) -> None:
    cache, inner, track = setup
    fresh = post()
    cache.add_post(fresh, track())
    assert cache.shown_posts([fresh.id]) == {fresh.id: ShownPost(fresh, "Alice Liddell")}
    assert inner.lookups == 0


def test_a_deleted_post_is_gone_at_once_without_asking_the_catalog(
    setup: tuple[RedisCatalogCache, CountingCatalog, Positions],
) -> None:
    cache, inner, track = setup
    kept, gone = post(), post()
    cache.add_post(kept, track())
    cache.add_post(gone, track())
    cache.remove_post(gone.id, track())
    assert cache.shown_posts([gone.id, kept.id]) == {kept.id: ShownPost(kept, "Alice Liddell")}
    assert inner.lookups == 0  # the tombstone answered


def test_a_reader_that_read_the_post_before_its_deletion_cannot_cache_it_again(
    setup: tuple[RedisCatalogCache, CountingCatalog, Positions],
) -> None:
    cache, inner, track = setup
    doomed = post()
    inner.add_post(doomed, track())  # not cached
    # The reader finds the post live in the catalog; the deletion is projected
    # before the reader fills the cache with what it read.
    inner.before_return = lambda: cache.remove_post(doomed.id, track())
    assert doomed.id in cache.shown_posts([doomed.id])
    assert cache.shown_posts([doomed.id]) == {}


def test_a_reader_that_read_the_old_name_cannot_cache_it_over_the_new(
    setup: tuple[RedisCatalogCache, CountingCatalog, Positions],
) -> None:
    cache, inner, track = setup
    hello = post()
    inner.add_post(hello, track())
    inner.before_return = lambda: cache.update_profile("alice", "Queen Alice", "", track())
    assert cache.shown_posts([hello.id]) == {hello.id: ShownPost(hello, "Alice Liddell")}
    assert cache.shown_posts([hello.id]) == {hello.id: ShownPost(hello, "Queen Alice")}


@pytest.fixture(params=["server", "cluster"])
def cache_on_either(
    request: pytest.FixtureRequest, redis_url: str, namespaces: list[str]
) -> Iterator[tuple[RedisCatalogCache, CountingCatalog, Positions]]:
    """``setup``'s cache, on the single server and on the session's cluster."""
    namespace = f"test-cache-{uuid.uuid4().hex}"
    client: redis.Redis | RedisCluster
    if request.param == "server":
        namespaces.append(namespace)
        client = redis.Redis.from_url(redis_url)
    else:
        client = request.getfixturevalue("redis_cluster_client")
    inner = CountingCatalog()
    cache = RedisCatalogCache(inner, client, namespace)
    track = Positions()
    cache.add_user(UserView("Alice", "Alice Liddell", "", AT), track())
    yield cache, inner, track
    if isinstance(client, RedisCluster):
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.unlink(key)


def replication_id_of_holder(cache: RedisCatalogCache) -> bytes:
    """The replication id of the server holding the cache: on a cluster, the
    primary serving the slot of its keys (they share one hash tag)."""
    client = cache.client
    server: redis.Redis
    if isinstance(client, RedisCluster):
        holder = client.get_node_from_key(f"{cache.key_prefix}replid")  # type: ignore[no-untyped-call]
        server = client.get_redis_connection(holder)
    else:
        server = client
    return str(server.info("replication")["master_replid"]).encode()


def test_a_new_server_empties_the_cache_but_its_tombstones(
    cache_on_either: tuple[RedisCatalogCache, CountingCatalog, Positions],
) -> None:
    """A failover or a restart changes Redis's replication id: the cache may
    have lost tombstones and names there (tests/integration/test_redis_sentinel.py
    and test_redis_cluster.py lose them for real), so it forgets its views and
    names, keeps its tombstones, and the catalog answers again. So it does at
    its first look, not knowing what the server held before."""
    cache, inner, track = cache_on_either
    kept, gone = post(), post()
    cache.add_post(kept, track())
    cache.add_post(gone, track())
    cache.remove_post(gone.id, track())
    shown = {kept.id: ShownPost(kept, "Alice Liddell")}

    assert cache.forget_if_replaced() == 2  # kept's view, alice's name
    assert cache.client.get(f"{cache.key_prefix}replid") == replication_id_of_holder(cache)
    assert cache.shown_posts([kept.id, gone.id]) == shown
    assert inner.lookups == 1  # the post and its author's name read again, and cached
    assert cache.forget_if_replaced() == 0  # the same server
    assert cache.max_tracking_id("chirp") == track.last  # which checks too
    assert cache.shown_posts([kept.id, gone.id]) == shown
    assert inner.lookups == 1

    cache.client.set(f"{cache.key_prefix}replid", "the id of a server that is gone")
    assert cache.forget_if_replaced() == 2
    assert cache.client.get(f"{cache.key_prefix}p:{gone.id.hex}") == b"-"
    assert cache.shown_posts([kept.id, gone.id]) == shown
    assert inner.lookups == 2


def test_a_name_no_longer_cached_is_read_again_and_cached(
    setup: tuple[RedisCatalogCache, CountingCatalog, Positions],
) -> None:
    cache, inner, track = setup
    hello = post()
    cache.add_post(hello, track())
    cache.client.delete(f"{cache._name_prefix}alice")  # expired, say
    assert cache.shown_posts([hello.id]) == {hello.id: ShownPost(hello, "Alice Liddell")}
    assert inner.lookups == 1
    assert cache.shown_posts([hello.id]) == {hello.id: ShownPost(hello, "Alice Liddell")}
    assert inner.lookups == 1


def test_a_post_by_an_unknown_author_shows_the_username_and_caches_no_name(
    setup: tuple[RedisCatalogCache, CountingCatalog, Positions],
) -> None:
    cache, _, track = setup
    orphan = post(author="Ghost")
    cache.add_post(orphan, track())
    cache.update_profile("ghost", "Not a user", "", track())  # unknown: changes nothing
    assert cache.shown_posts([orphan.id]) == {orphan.id: ShownPost(orphan, "Ghost")}
    assert cache.client.get(f"{cache._name_prefix}ghost") is None


def test_without_redis_pages_come_from_the_catalog_and_writes_wait(
    setup: tuple[RedisCatalogCache, CountingCatalog, Positions],
) -> None:
    _, inner, track = setup
    unreachable = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    cache = RedisCatalogCache(inner, unreachable, "test-cache-unreachable")
    hello = post()
    inner.add_post(hello, track())
    assert cache.shown_posts([hello.id]) == {hello.id: ShownPost(hello, "Alice Liddell")}
    # A deletion that could not reach the cache is not made in the catalog
    # either: the projector retries it, so no cached copy outlives it.
    with pytest.raises(FeedUnavailableError):
        cache.remove_post(hello.id, track())
    assert hello.id in inner.posts([hello.id])
    with pytest.raises(FeedUnavailableError):
        cache.update_profile("alice", "Queen Alice", "", track())
    assert inner.users(["alice"])["alice"].display_name == "Alice Liddell"


def test_more_posts_than_one_script_call_reads_are_found_in_order(
    setup: tuple[RedisCatalogCache, CountingCatalog, Positions],
) -> None:
    cache, _, track = setup
    posts = [post(text=f"post {n}") for n in range(2_100)]
    for each in posts:
        cache.add_post(each, track())
    gone = posts[1_500]
    cache.remove_post(gone.id, track())
    found = cache.shown_posts([p.id for p in posts])
    assert found == {p.id: ShownPost(p, "Alice Liddell") for p in posts if p is not gone}

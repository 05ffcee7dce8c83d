"""``RedisPageReader``: pages of Redis feeds with what they show, in one round trip.

The query tests of ``tests/unit/test_queries.py`` (what each feed holds,
enrichment, paging, deletions the feeds still hold, errors) run again here on
Chirp as the wiring builds it with Redis feeds: the catalog behind its Redis
cache, pages read by ``RedisPageReader``. Then what the reader itself
promises: one round trip for a warm page, the same pages past a timeline's
horizon (where the script cannot answer alone), and misses read from the
catalog.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import tests.unit.test_queries as query_tests
from adapters.redis.catalog_cache import RedisCatalogCache
from adapters.redis.pages import RedisPageReader
from application.feed_names import timeline_feed
from application.feeds import FeedUnavailableError
from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from tests.integration.test_redis_feed_provider import CountingConnection
from tests.services import require_redis

pytestmark = pytest.mark.redis

# Every query test but those that spy on the catalog's calls (a page reader
# makes its lookups in Redis) or break ``provider.read`` (which it does not
# call: the outage is tested below).
SPYING = ("catalog_lookup", "costs", "lookups", "skip_the", "feed_outage")
RERUN = [
    name
    for name in dir(query_tests)
    if name.startswith("test_") and not any(part in name for part in SPYING)
]
for _name in RERUN:
    globals()[_name] = getattr(query_tests, _name)
chirp = query_tests.chirp  # their fixtures, building Chirp with new_chirp (patched below)
busy = query_tests.busy


def redis_chirp(read_own_writes: bool = True, **options: object) -> Chirp:
    namespace = f"test-pages-{uuid.uuid4().hex}"
    settings = Settings(
        database_url="memory:",
        feed_provider="redis",
        redis_url=require_redis(),
        redis_namespace=namespace,
        **options,  # type: ignore[arg-type]
    )
    made = build_chirp(settings, read_own_writes)
    _made.append(made)
    return made


_made: list[Chirp] = []


@pytest.fixture(autouse=True)
def _chirp_on_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The query tests' Chirp, built with Redis feeds; their keys removed after."""
    monkeypatch.setattr(query_tests, "new_chirp", redis_chirp)
    yield
    while _made:
        made = _made.pop()
        assert isinstance(made.queries.pages, RedisPageReader)
        made.queries.pages.provider.clear()


def at(minutes: int) -> datetime:
    return datetime(2024, 5, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=minutes)


def test_the_wiring_reads_pages_through_the_reader() -> None:
    chirp = redis_chirp()
    assert isinstance(chirp.catalog, RedisCatalogCache)
    assert isinstance(chirp.queries.pages, RedisPageReader)
    assert chirp.catalog.client is chirp.queries.pages.provider.client  # one client, one pool
    chirp.close()


def test_a_warm_page_of_25_with_names_is_one_round_trip() -> None:
    chirp = redis_chirp()
    chirp.register("alice", "Alice Liddell")
    chirp.register("bob")
    chirp.follow("bob", "alice")
    posted = [chirp.post("alice", f"post {n} #tea @bob", at(n)) for n in range(30)]
    pages = chirp.queries.pages
    assert isinstance(pages, RedisPageReader)
    first = chirp.queries.home_timeline("bob")  # fills what the cache missed

    pool = redis.ConnectionPool.from_url(require_redis(), connection_class=CountingConnection)
    counting = redis.Redis(connection_pool=pool)
    counting.ping()  # the connection's handshake
    pages.provider.client = pages.cache.client = counting
    CountingConnection.reset()
    again = chirp.queries.home_timeline("bob")
    assert CountingConnection.sends == 1
    assert again == first
    assert [item.post_id for item in again.items] == posted[::-1][:25]
    assert {item.author.display_name for item in again.items} == {"Alice Liddell"}
    chirp.close()


def test_pages_past_a_timelines_horizon_read_the_same() -> None:
    # A cap of 3: most pages are merged past the cache, where the script
    # does not answer alone and the reader asks the cache itself.
    chirp = redis_chirp(timeline_cap=3)
    chirp.register("alice")
    chirp.register("bob")
    chirp.follow("bob", "alice")
    posted = [chirp.post("alice", f"post {n}", at(n)) for n in range(12)]
    chirp.delete_post(posted[5], by="alice")
    seen, cursor = [], None
    while True:
        page = chirp.queries.home_timeline("bob", limit=4, cursor=cursor)
        seen += [item.post_id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [p for p in posted[::-1] if p != posted[5]]
    chirp.close()


def test_posts_the_cache_has_not_seen_are_read_from_the_catalog() -> None:
    chirp = redis_chirp()
    chirp.register("alice", "Alice Liddell")
    hello = chirp.post("alice", "hello", at(1))
    assert isinstance(chirp.catalog, RedisCatalogCache)
    cache = chirp.catalog
    cache.client.delete(f"{cache.key_prefix}p:{hello.hex}", f"{cache.key_prefix}n:alice")
    [item] = chirp.queries.profile_feed("alice").items
    assert (item.post_id, item.author.display_name, item.text) == (hello, "Alice Liddell", "hello")
    assert cache.client.exists(f"{cache.key_prefix}p:{hello.hex}") == 1  # cached again
    feed = timeline_feed("alice")
    assert [a.foreign_id for a in chirp.provider.read(feed)] == [f"tweet:{hello}"]
    chirp.close()


def test_a_page_with_redis_out_of_reach_is_feed_unavailable() -> None:
    chirp = redis_chirp()
    chirp.register("alice")
    chirp.post("alice", "hello", at(1))
    pages = chirp.queries.pages
    assert isinstance(pages, RedisPageReader)
    working = pages.provider.client
    pages.provider.client = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    with pytest.raises(FeedUnavailableError):
        chirp.queries.home_timeline("alice")
    pages.provider.client = working
    assert len(chirp.queries.home_timeline("alice").items) == 1
    chirp.close()

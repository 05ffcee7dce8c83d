"""The feed provider contract on the Redis adapter and a real Redis server, plus
what only Redis shows: the timeline cap and paging past it, data stored once,
fan-out round trips, and memory per timeline entry.

Each test works in a namespace of its own (a fresh uuid), deleted after the
test with SCAN + UNLINK, so tests never see each other's keys. The tests skip
when Redis is unreachable, and fail instead under ``CHIRP_REQUIRE_SERVICES=1``
or ``CI=true`` (see ``tests/services.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.inmemory import InMemoryFeedProvider
from adapters.redis import RedisFeedProvider
from application.feeds import Activity, FeedId, FeedProvider, Follow, StoredActivity
from tests.contract.feed_provider_contract import (
    _FOLLOW,
    _MODEL_GROUPS,
    _OPERATIONS,
    FeedProviderContract,
    _FeedModel,
)
from tests.services import require_redis

pytestmark = pytest.mark.redis

ALL_GROUPS = frozenset({"user", "timeline", "hashtag", "mentions", "notification"})


class CountingConnection(redis.Connection):
    """Counts round trips (sends until the replies are read: a command, or a
    whole pipeline sent in one or several writes) and the commands they carry."""

    sends = 0
    commands = 0
    _awaiting = False  # sent since the last read: more sends join that round trip

    @classmethod
    def reset(cls) -> None:
        cls.sends = cls.commands = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._awaiting:
            CountingConnection.sends += 1
            self._awaiting = True
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self._awaiting = False
        return super().read_response(*args, **kwargs)

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        CountingConnection.commands += 1
        super().send_command(*args, **kwargs)  # type: ignore[no-untyped-call]

    def pack_commands(self, commands: Any) -> Any:
        commands = list(commands)
        CountingConnection.commands += len(commands)
        return super().pack_commands(commands)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


class RedisContract(FeedProviderContract):
    """The contract with providers on fresh namespaces, removed after each test."""

    timeline_cap = 800
    capped_groups = frozenset({"timeline"})
    celebrity_threshold: int | None = None
    cluster_paths = False

    @pytest.fixture(autouse=True)
    def _redis(self, redis_client: redis.Redis) -> Iterator[None]:
        self.client = redis_client
        self.providers: list[RedisFeedProvider] = []
        yield
        for provider in self.providers:
            provider.clear()

    def make_provider(self) -> FeedProvider:
        provider = RedisFeedProvider(
            self.client,
            namespace=f"test-{uuid.uuid4().hex}",
            timeline_cap=self.timeline_cap,
            capped_groups=self.capped_groups,
            celebrity_threshold=self.celebrity_threshold,
        )
        if self.cluster_paths:
            provider._cluster = True
        self.providers.append(provider)
        return provider


class TestRedisFeedProvider(RedisContract):
    property_max_examples = 30


class TestRedisFeedProviderCappedAtThree(RedisContract):
    """Every group capped at 3: nearly every read pages past a cache."""

    property_max_examples = 30
    timeline_cap = 3
    capped_groups = ALL_GROUPS


class TestRedisFeedProviderClusterPaths(RedisContract):
    """What the provider does on a Redis Cluster (listed fan-outs checked
    after their writes, follower caches read after the unfollow, records
    by GET, redis-py's pipeline), run on the single server, at caps of 3."""

    property_max_examples = 30
    timeline_cap = 3
    capped_groups = ALL_GROUPS
    cluster_paths = True


class TestRedisFeedProviderHybrid(RedisContract):
    """Every feed with a follower fanned out at read time (threshold 1): the
    same contract, so reads do not depend on the threshold."""

    property_max_examples = 30
    celebrity_threshold = 0


class TestRedisFeedProviderHybridCappedAtThree(RedisContract):
    """Hybrid feeds and caps of 3: merges of hybrid deliveries meet the horizon."""

    property_max_examples = 30
    timeline_cap = 3
    capped_groups = ALL_GROUPS
    celebrity_threshold = 0


# -- what only Redis shows ------------------------------------------------------

BASE = datetime(2024, 3, 1, 12, 0, 0)


def post(
    feed: FeedId, n: int, to: tuple[FeedId, ...] = (), seconds: float | None = None
) -> Activity:
    fid = f"post:{feed.id}:{n}"
    moment = BASE + timedelta(seconds=n if seconds is None else seconds)
    return Activity("alice", "tweet", fid, fid, moment, to=to, extra={"text": f"hello {n}"})


def key(provider: RedisFeedProvider, feed: FeedId, suffix: str) -> str:
    """A feed's key, as the module docstring of adapters/redis/feeds.py lays out."""
    return f"{provider.namespace}:{{{feed}}}:{suffix}"


def cached_ids(provider: RedisFeedProvider, feed: FeedId) -> list[str]:
    """The ids in a capped feed's cache, newest first (scores are negated times)."""
    tl_key = key(provider, feed, "tl")
    scored: list[tuple[bytes, float]] = provider.client.zrange(tl_key, 0, -1, withscores=True)  # type: ignore[assignment]
    newest_first = sorted(scored, key=lambda pair: (-pair[1], pair[0]), reverse=True)
    return [str(uuid.UUID(bytes=member)) for member, _ in newest_first]


def read_all(provider: FeedProvider, feed: FeedId, page: int) -> list[StoredActivity]:
    found: list[StoredActivity] = []
    cursor: str | None = None
    while True:
        batch = provider.read(feed, limit=page, id_lt=cursor)
        found += batch
        if len(batch) < page:
            return found
        cursor = batch[-1].id


@pytest.fixture
def make(redis_client: redis.Redis) -> Iterator[Callable[..., RedisFeedProvider]]:
    made: list[RedisFeedProvider] = []

    def make(client: redis.Redis | None = None, **options: Any) -> RedisFeedProvider:
        provider = RedisFeedProvider(
            client or redis_client, namespace=f"test-{uuid.uuid4().hex}", **options
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.clear()


class Both:
    """The same calls on the Redis provider and on the in-memory reference."""

    def __init__(self, provider: RedisFeedProvider) -> None:
        self.redis = provider
        self.reference = InMemoryFeedProvider()

    def __getattr__(self, name: str) -> Callable[..., None]:
        def call(*args: Any, **kwargs: Any) -> None:
            mine = getattr(self.redis, name)(*args, **kwargs)
            theirs = getattr(self.reference, name)(*args, **kwargs)
            assert mine == theirs, name

        return call


def test_a_capped_timeline_keeps_its_newest_800_and_pages_past_them_to_the_end(
    make: Callable[..., RedisFeedProvider],
) -> None:
    provider = make()
    both = Both(provider)
    timeline = FeedId("timeline", "reader")
    authors = [FeedId("user", f"a{n}") for n in range(4)]
    late_author = FeedId("user", "late")
    for n in range(200):  # history of a feed followed later with copy limit 50
        both.add_activity(late_author, post(late_author, n, seconds=n * 7))
    both.add_activity(authors[0], post(authors[0], 10_000, to=(timeline,), seconds=3))
    both.follow_many([Follow(timeline, author) for author in authors], activity_copy_limit=0)
    tl_key = key(provider, timeline, "tl")
    for n in range(2000):
        author = authors[n % 4]
        both.add_activity(author, post(author, n, seconds=n * 1.5))
        if n == 600:
            assert provider.client.zcard(tl_key) == 601 + 1  # the posts and the mention
            both.unfollow(timeline, authors[3], keep_history=True)
            both.follow(timeline, late_author, activity_copy_limit=50)
        if n == 900:
            assert 720 < provider.client.zcard(tl_key) <= 800  # sheds a tenth when full
            both.unfollow(timeline, authors[2])
    for n in (1, 5, 401, 1101):  # removals deep below the cap and inside it
        both.remove_activity(authors[1], post(authors[1], n).foreign_id)

    cached = cached_ids(provider, timeline)
    expected = read_all(both.reference, timeline, 100)
    assert len(expected) > 1100
    # A full cache sheds its oldest tenth at once; removals inside it leave gaps.
    assert 700 <= len(cached) <= 800
    assert cached == [item.id for item in expected[: len(cached)]]
    for page in (7, 25, 100):
        found = read_all(provider, timeline, page)
        assert found == expected, page  # the same activities, order and data
        ids = [item.id for item in found]
        assert len(set(ids)) == len(ids)


def test_posts_of_the_same_microsecond_page_from_a_cache_in_id_order(
    make: Callable[..., RedisFeedProvider],
) -> None:
    """A cache scores entries by negated time, which lists equal times in
    ascending id order: reads still page them newest (highest id) first."""
    provider = make()
    both = Both(provider)
    timeline = FeedId("timeline", "reader")
    authors = [FeedId("user", f"a{n}") for n in range(12)]
    both.follow_many([Follow(timeline, author) for author in authors])
    for n, author in enumerate(authors):
        both.add_activity(author, post(author, n, seconds=60 if n % 3 else 30))
    expected = read_all(both.reference, timeline, 100)
    assert len(expected) == 12
    for page in (1, 2, 5):
        assert read_all(provider, timeline, page) == expected, page


def test_data_is_stored_once_and_timelines_hold_16_byte_ids(
    make: Callable[..., RedisFeedProvider],
) -> None:
    provider = make()
    author, tag = FeedId("user", "author"), FeedId("hashtag", "python")
    readers = [FeedId("timeline", f"r{n}") for n in range(20)]
    provider.follow_many([Follow(reader, author) for reader in readers])
    provider.follow(readers[0], tag)
    for n in range(50):
        provider.add_activity(author, post(author, n, to=(tag, readers[1])))
    keys = list(provider.client.scan_iter(match=f"{provider.namespace}:a:*", count=1000))
    records = [k for k in keys if not k.endswith(b":o")]  # the data; ``:o`` its owners
    assert len(records) == 50 and len(keys) == 100
    for reader in readers:
        members = provider.client.zrange(key(provider, reader, "tl"), 0, -1)
        assert len(members) == 50
        assert {len(member) for member in members} == {16}
    texts = {item.extra["text"] for item in read_all(provider, readers[0], 100)}
    assert texts == {f"hello {n}" for n in range(50)}


def test_fan_out_to_2000_followers_takes_two_round_trips(
    make: Callable[..., RedisFeedProvider], redis_url: str
) -> None:
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    counting = redis.Redis(connection_pool=pool)
    try:
        provider = make(counting)
        author = FeedId("user", "star")
        fans = [FeedId("timeline", f"fan{n}") for n in range(2000)]

        CountingConnection.reset()
        provider.follow_many([Follow(fan, author) for fan in fans], activity_copy_limit=0)
        assert CountingConnection.sends <= 2, CountingConnection.sends

        CountingConnection.reset()
        aid = provider.add_activity(author, post(author, 1, to=(FeedId("hashtag", "news"),)))
        # One pipeline to store the activity and make its feeds own it, one
        # of a slice script per fan_out_batch followers and one look for
        # followers that left keeping history meanwhile.
        assert CountingConnection.sends == 2, CountingConnection.sends
        batches = -(-len(fans) // provider.fan_out_batch)
        assert 1 < batches <= CountingConnection.commands <= batches + 6

        with counting.pipeline(transaction=False) as pipe:
            for fan in fans:
                pipe.zcard(key(provider, fan, "tl"))
            assert pipe.execute() == [1] * len(fans)
        assert [item.id for item in provider.read(fans[-1])] == [aid]
    finally:
        counting.close()


def unfollow_before_the_cache_writes(
    provider: RedisFeedProvider,
    monkeypatch: pytest.MonkeyPatch,
    writes: str,
    *edges: tuple[FeedId, FeedId, bool],
) -> None:
    """Make the next fan-out meet unfollows (source, target, keep_history)
    that land after it read its followers and before the provider's method
    ``writes`` writes their caches."""
    write = getattr(provider, writes)

    def late(*args: Any) -> None:
        provider.unfollow_many([Follow(s, t) for s, t, keep in edges if not keep])
        provider.unfollow_many([Follow(s, t) for s, t, keep in edges if keep], keep_history=True)
        monkeypatch.setattr(provider, writes, write)
        write(*args)

    monkeypatch.setattr(provider, writes, late)


def test_a_fan_out_that_unfollows_overtake_writes_only_what_they_let_through(
    make: Callable[..., RedisFeedProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice skips who unfollowed; what another path holds (a mention, or
    history kept while the post was fanned out) stays readable."""
    provider = make()
    author = FeedId("user", "star")
    gone, mentioned, kept, stays = (FeedId("timeline", n) for n in ("gone", "m", "kept", "stays"))
    provider.follow_many([Follow(f, author) for f in (gone, mentioned, kept, stays)])
    older = provider.add_activity(author, post(author, 0))
    unfollow_before_the_cache_writes(
        provider,
        monkeypatch,
        "_fan_out_sliced",
        (gone, author, False),
        (mentioned, author, False),
        (kept, author, True),
    )
    aid = provider.add_activity(author, post(author, 1, to=(mentioned,)))
    assert cached_ids(provider, gone) == [] and provider.read(gone) == []
    assert [a.id for a in provider.read(mentioned)] == [aid]
    assert [a.id for a in provider.read(kept)] == [aid, older]
    assert [a.id for a in provider.read(stays)] == [aid, older]
    assert cached_ids(provider, stays) == [aid, older]


def test_more_departures_keeping_history_than_a_feed_remembers_are_found_in_its_windows(
    make: Callable[..., RedisFeedProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make()
    author = FeedId("user", "star")
    readers = [FeedId("timeline", f"r{n}") for n in range(1002)]  # KEPT is 1,000
    provider.follow_many([Follow(r, author) for r in readers])
    edges = [(r, author, True) for r in readers[:1001]]
    unfollow_before_the_cache_writes(provider, monkeypatch, "_fan_out_sliced", *edges)
    aid = provider.add_activity(author, post(author, 1))
    for reader in (readers[0], readers[500], readers[1000], readers[1001]):
        assert [a.id for a in provider.read(reader)] == [aid]
    assert provider.client.zcard(key(provider, author, "kept")) == 1000


def test_a_fan_out_to_listed_followers_that_an_unfollow_overtakes_takes_its_writes_back(
    make: Callable[..., RedisFeedProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk (and any fan-out on a cluster) writes first and checks the
    follows after."""
    provider = make()
    author = FeedId("user", "star")
    gone, kept, stays = (FeedId("timeline", n) for n in ("gone", "kept", "stays"))
    provider.follow_many([Follow(f, author) for f in (gone, kept, stays)])
    aid = provider.store_activity(author, post(author, 1))
    unfollow_before_the_cache_writes(
        provider, monkeypatch, "_fan_out", (gone, author, False), (kept, author, True)
    )
    provider.copy_to_followers(author, aid, [gone, kept, stays])
    assert cached_ids(provider, gone) == [] and provider.read(gone) == []
    assert [a.id for a in provider.read(kept)] == [aid]
    assert cached_ids(provider, stays) == [aid]


def test_a_celebrity_post_costs_a_constant_number_of_writes_and_reads_the_same(
    make: Callable[..., RedisFeedProvider], redis_url: str
) -> None:
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    counting = redis.Redis(connection_pool=pool)
    try:
        provider = make(counting, celebrity_threshold=1000)
        eager = make(counting)
        author = FeedId("user", "star")
        fans = [FeedId("timeline", f"fan{n}") for n in range(2000)]
        for feeds in (provider, eager):
            feeds.follow_many([Follow(fan, author) for fan in fans], activity_copy_limit=0)
            feeds.add_activity(fans[0], post(fans[0], 0))

        for number in (1, 2):
            CountingConnection.reset()
            eager.add_activity(author, post(author, number))
            assert CountingConnection.commands > len(fans) // eager.fan_out_batch
            CountingConnection.reset()
            provider.add_activity(author, post(author, number))
            assert CountingConnection.sends == 2, CountingConnection.sends
            assert CountingConnection.commands <= 6, CountingConnection.commands
        assert provider.fans_out_on_read(author) and not eager.fans_out_on_read(author)

        with counting.pipeline(transaction=False) as pipe:
            for fan in fans:
                pipe.zcard(key(provider, fan, "tl"))
            assert set(pipe.execute()) <= {0, 1}  # only fan0's own post is cached
        with counting.pipeline(transaction=False) as pipe:
            for fan in fans:
                pipe.zcard(key(eager, fan, "tl"))
            assert pipe.execute() == [3] + [2] * (len(fans) - 1)  # every fan's cache written
        for fan in (fans[0], fans[1], fans[-1]):
            assert provider.read(fan) == eager.read(fan)
            assert len(provider.read(fan)) == (3 if fan == fans[0] else 2)
    finally:
        counting.close()


def test_a_page_with_hybrid_feeds_merged_is_one_round_trip_on_a_single_server(
    make: Callable[..., RedisFeedProvider], redis_url: str
) -> None:
    """The read script merges what the hybrid feeds deliver and fetches the
    records itself; a page past the cache's horizon takes more."""
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    counting = redis.Redis(connection_pool=pool)
    try:
        writer = make(counting, celebrity_threshold=2, timeline_cap=3)
        reader = RedisFeedProvider(counting, writer.namespace, timeline_cap=3)
        star, other = FeedId("user", "star"), FeedId("user", "other")
        fans = [FeedId("timeline", f"f{n}") for n in range(3)]
        writer.follow_many([Follow(fan, star) for fan in fans])
        writer.follow_many([Follow(fan, other) for fan in fans[:2]])  # 2: not past the threshold
        posts = []
        for n in range(6):  # the star's posts are merged, the other's cached
            author = star if n % 2 else other
            posts.append(writer.add_activity(author, post(author, n)))
        assert writer.fans_out_on_read(star) and not writer.fans_out_on_read(other)
        newest_first = posts[::-1]

        CountingConnection.reset()
        page = reader.read(fans[0], limit=3)
        assert [a.id for a in page] == newest_first[:3]
        assert CountingConnection.sends == 1
        assert [a.id for a in read_all(reader, fans[0], 2)] == newest_first
    finally:
        counting.close()


def test_hybrid_feeds_skipped_by_their_newest_entry_read_the_same(
    make: Callable[..., RedisFeedProvider],
) -> None:
    """A page skips the hybrid feeds whose newest entry (``P:hybrid:newest``)
    scores below its last cached entry. Here the star turns hybrid with a
    back-dated post, posts again, and one reader's page of newer posts from
    elsewhere skips it while the others' merge it; a feed missing from
    ``newest`` (stored before it existed) is merged, never skipped."""
    redis_provider = make(celebrity_threshold=1, timeline_cap=3)
    provider = Both(redis_provider)
    star, other = FeedId("user", "star"), FeedId("user", "other")
    fans = [FeedId("timeline", f"f{n}") for n in range(3)]
    provider.follow(fans[0], star)
    for n in range(3):  # one follower: fanned out on write
        provider.add_activity(star, post(star, n, seconds=100 + n))
    provider.follow(fans[1], star)
    provider.add_activity(star, post(star, 3, seconds=0))  # 2 followers: hybrid from here
    assert redis_provider.fans_out_on_read(star)
    provider.follow(fans[2], star)
    provider.add_activity(star, post(star, 4, seconds=200))  # merged at read time
    provider.follow(fans[1], other)
    for n in range(3):
        provider.add_activity(other, post(other, n, seconds=300 + n))
    newest = f"{redis_provider.namespace}:hybrid:newest"
    top = redis_provider.client.zrevrange(key(redis_provider, star, "own"), 0, 0, withscores=True)
    assert redis_provider.client.zscore(newest, "user:star") == top[0][1]  # post 4's

    def pages_match() -> None:
        for fan in fans:
            for page in (1, 2, 3, 10):
                mine = read_all(redis_provider, fan, page)
                assert mine == read_all(provider.reference, fan, page)
                assert "post:star:4" in [a.foreign_id for a in mine]

    pages_match()
    redis_provider.client.zrem(newest, "user:star")
    pages_match()


def test_a_reader_learns_of_a_new_hybrid_feed_without_an_extra_round_trip_otherwise(
    make: Callable[..., RedisFeedProvider], redis_url: str
) -> None:
    """On a cluster (its code paths, on the single server), providers sharing
    a namespace (web processes) keep the hybrid set as last read: a read
    sends its version beside the read script, and reads the set again only
    after another provider made a feed hybrid."""
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    counting = redis.Redis(connection_pool=pool)
    try:
        writer = make(counting, celebrity_threshold=2)
        reader = RedisFeedProvider(counting, writer.namespace, celebrity_threshold=2)
        writer._cluster = reader._cluster = True
        star, fans = FeedId("user", "star"), [FeedId("timeline", f"f{n}") for n in range(3)]
        writer.follow_many([Follow(fan, star) for fan in fans], activity_copy_limit=0)
        first = writer.add_activity(fans[0], post(fans[0], 0))
        assert [a.id for a in reader.read(fans[0])] == [first]

        CountingConnection.reset()
        assert [a.id for a in reader.read(fans[0])] == [first]
        assert CountingConnection.sends == 2  # script + version, then the records

        hybrid = writer.add_activity(star, post(star, 1))  # 3 followers > 2: hybrid
        assert writer.fans_out_on_read(star)
        CountingConnection.reset()
        assert [a.id for a in reader.read(fans[0])] == [hybrid, first]
        assert CountingConnection.sends > 2  # learnt the new set, merged the star's post
        CountingConnection.reset()
        assert [a.id for a in reader.read(fans[1])] == [hybrid]
        unchanged = CountingConnection.sends
        CountingConnection.reset()
        assert [a.id for a in reader.read(fans[1])] == [hybrid]
        assert CountingConnection.sends == unchanged  # the set is known now
    finally:
        counting.close()


def test_an_800_entry_timeline_costs_at_most_40_bytes_per_entry(
    make: Callable[..., RedisFeedProvider],
) -> None:
    provider = make()
    assert provider.listpack_configured, (
        "the server refused CONFIG SET zset-max-listpack-entries (see the warning): set it to"
        " at least 800 in redis.conf; without it timelines use the skiplist encoding"
    )
    author, timeline = FeedId("user", "author"), FeedId("timeline", "reader")
    provider.follow(timeline, author)
    for n in range(880):  # full at 800, sheds 80 at the 801st, full again at the 880th
        provider.add_activity(author, post(author, n))
    timeline_key = key(provider, timeline, "tl")
    client = provider.client
    assert client.zcard(timeline_key) == 800
    assert client.object("encoding", timeline_key) == b"listpack"
    usage = client.memory_usage(timeline_key, samples=0)
    assert usage is not None
    per_entry = usage / 800
    print(f"MEMORY USAGE of an 800-entry timeline: {usage} bytes, {per_entry:.1f} per entry")
    assert per_entry <= 40, per_entry


def test_removals_that_one_followed_feed_explains_keep_the_cache_exact(
    make: Callable[..., RedisFeedProvider],
) -> None:
    """Chirp's shape: timelines follow user feeds, posts also go to hashtags.
    Unfollow and delete then drop cached entries one by one, never truncating
    the cache (which would send later reads to the slower merge)."""
    provider = make()
    timeline, tag = FeedId("timeline", "reader"), FeedId("hashtag", "news")
    first, second = FeedId("user", "first"), FeedId("user", "second")
    provider.follow_many([Follow(timeline, first), Follow(timeline, second)])
    kept = [provider.add_activity(second, post(second, n * 2, to=(tag,))) for n in range(5)]
    for n in range(5):
        provider.add_activity(first, post(first, n * 2 + 1, to=(tag,)))
    provider.unfollow(timeline, first)
    provider.remove_activity(second, post(second, 0).foreign_id)
    state = key(provider, timeline, "st")
    assert provider.client.hget(state, "h") is None
    assert cached_ids(provider, timeline) == kept[:0:-1]
    assert [item.id for item in provider.read(timeline)] == kept[:0:-1]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    graph=st.lists(_FOLLOW, max_size=6),
    ops=st.lists(_OPERATIONS, min_size=10, max_size=40),
    cap=st.sampled_from([1, 2, 5]),
    page=st.sampled_from([1, 2, 3, 7]),
)
def test_reads_past_a_low_cap_equal_the_in_memory_providers(
    redis_client: redis.Redis, graph: list[Any], ops: list[Any], cap: int, page: int
) -> None:
    """Exactly the same pages (ids and data) and follow lists as the
    reference adapter, with every feed capped low."""
    provider = RedisFeedProvider(
        redis_client, f"diff-{uuid.uuid4().hex}", timeline_cap=cap, capped_groups=ALL_GROUPS
    )
    reference = InMemoryFeedProvider()
    try:
        run = uuid.uuid4().hex[:12]
        feeds = [FeedId(group, f"m{run}{n}") for n, group in enumerate(_MODEL_GROUPS)]
        models = _FeedModel(feeds, run), _FeedModel(feeds, run)
        for op in [*graph, *ops]:
            models[0].apply(op, provider)
            models[1].apply(op, reference)
            for feed in feeds:
                assert read_all(provider, feed, page) == read_all(reference, feed, page), feed
                assert provider.followers(feed) == reference.followers(feed)
                assert provider.following(feed) == reference.following(feed)
    finally:
        provider.clear()

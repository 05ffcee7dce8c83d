"""Benchmark: Chirp's Redis feeds beside raw Redis and a fan-out-on-read PostgreSQL baseline.

Four measurements, side by side in one run (the machine is noisy: read the
ratios, not the absolute figures):

1. fan-out: timeline entries written per second when an account with
   ``--fanout-followers`` followers posts through ``RedisFeedProvider.add_activity``,
   beside ``redis-benchmark -P 100`` ZADDs into random keys (run before and
   after) and a redis-py pipeline of plain ZADDs, on the same server;
2. home-timeline read (25 enriched items), p50 and p99: ``FeedQueries.home_timeline``
   over ``RedisFeedProvider`` + ``PostgresCatalog`` beside a Django-style
   fan-out-on-read query on PostgreSQL, on the shared workload's network
   (``shared/workload/generate.py --users N``), readers sampled per followee band;
3. memory: Redis bytes per timeline entry (``MEMORY USAGE`` of full timeline
   caches, and the ``used_memory`` delta of the fan-outs);
4. celebrity post: entries written and time for an account with
   ``--celebrity-followers`` followers posting with plain fan-out.

Both sides of (2) are loaded directly, not through Chirp's event-sourced
commands (8.8M ops at ~350 ops/s would take about 7 hours): the follow graph
with ``follow_many`` and every post with ``add_activity`` (the projector's
calls, in time order), the catalog's tables and the baseline's with COPY. The
final state of the workload is loaded (follows minus unfollows, posts minus
deletes). Run on demand, not in the test suite::

    .venv/bin/python bench/feeds.py --quick   # ~4 minutes on 2 cores: 2,000 users
    .venv/bin/python bench/feeds.py           # ~30 minutes: 50,000 users, 1M-follower celebrity

The full run builds only the sampled readers' home timelines (``--timelines
all`` builds all 50,000: 124M fanned-out entries, over an hour more).

Writes its section of ``docs/benchmarks.md`` (replacing the previous one of
the same mode) and ``docs/benchmarks/feeds-<mode>.png``. Works in Redis
namespaces ``bench-feeds-<pid>-*`` and the PostgreSQL schema
``bench_feeds_<pid>``, deleted at the end, on failure too.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import multiprocessing
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, cast

import psycopg
import redis
from doc_sections import DOC, write_section
from eventsourcing.postgres import PostgresDatastore

from adapters.postgres.catalog import PostgresCatalog
from adapters.redis.catalog_cache import RedisCatalogCache
from adapters.redis.feeds import DEFAULT_TIMELINE_CAP, RedisFeedProvider
from adapters.redis.pages import RedisPageReader
from application.catalog import AuthoredPost
from application.feed_names import post_foreign_id, timeline_feed, user_feed
from application.feeds import (
    DEFAULT_CELEBRITY_THRESHOLD,
    DEFAULT_COPY_LIMIT,
    Activity,
    FeedId,
    Follow,
    activity_id,
)
from application.projectors import post_activity
from application.queries import FeedQueries
from application.workload import chirp_text, chirp_username, parse_time
from domain.tweet import Tweet, find_entities

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT.parent / "shared" / "workload" / "generate.py"
PLOTS = ROOT / "docs" / "benchmarks"
POST_NAMESPACE = uuid.UUID("6f1d4c1e-8d0b-4a58-9f55-3b0c2f9e7a10")
PAGE = 25
FOLLOW_CHUNK = 10_000
# Followee bands readers are sampled from (the generator draws 5, 50, 100,
# 100..1000 or 1000..5000 followees, less 1% unfollowed).
BANDS: list[tuple[str, int, int]] = [
    ("< 10", 0, 9),
    ("10-99", 10, 99),
    ("100-999", 100, 999),
    (">= 1000", 1000, 10**9),
]
BASELINE_QUERY = (
    "SELECT p.id, p.text, p.created_at, u.username, u.display_name "
    "FROM posts p JOIN users u ON u.id = p.author_id "
    "WHERE p.author_id IN "
    "(SELECT f.followee_id FROM follows f WHERE f.follower_id = %(reader)s "
    "UNION ALL SELECT %(reader)s) "
    "ORDER BY p.created_at DESC LIMIT 25"
)


# An idle wait before a page in chirp_alone: about a PostgreSQL page's time.
IDLE_PAUSE = 0.005


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- configuration ----------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    mode: str
    fanout_followers: int
    fanout_posts: int
    users: int
    seed: int
    readers_per_band: int
    rounds: int
    celebrity_followers: int
    workers: int
    redis_url: str
    pg: dict[str, Any]
    workload: Path | None
    write_doc: bool
    all_timelines: bool

    @property
    def command(self) -> str:
        parts = [".venv/bin/python bench/feeds.py"]
        if self.mode == "quick":
            parts.append("--quick")
        return " ".join(parts)


def parse_config(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, within 5 minutes")
    parser.add_argument("--users", type=int, help="network size (50,000; --quick 2,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fanout-followers", type=int, default=100_000)
    parser.add_argument("--fanout-posts", type=int, default=3)
    parser.add_argument("--celebrity-followers", type=int, help="1,000,000; --quick 100,000")
    parser.add_argument("--readers-per-band", type=int, help="250; --quick 50")
    parser.add_argument("--rounds", type=int, help="timed reads per reader: 8; --quick 5")
    parser.add_argument("--workers", type=int, default=2, help="processes loading the network")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--pg-password", default="")
    parser.add_argument("--pg-dbname", default="test")
    parser.add_argument("--workload", type=Path, help="an already generated workload file")
    parser.add_argument(
        "--timelines",
        choices=["all", "readers"],
        help="whose home timelines to build: all (--quick) or the sampled readers' (full run)",
    )
    parser.add_argument("--no-doc", action="store_true", help="print, do not write docs/")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    custom = any(
        value is not None
        for value in (
            args.users,
            args.celebrity_followers,
            args.readers_per_band,
            args.rounds,
            args.timelines,
        )
    )
    if custom and not args.no_doc:
        parser.error("custom sizes are for trying things out: add --no-doc")
    return Config(
        mode="quick" if quick else "full",
        fanout_followers=args.fanout_followers,
        fanout_posts=max(2, args.fanout_posts),
        users=args.users or (2_000 if quick else 50_000),
        seed=args.seed,
        readers_per_band=args.readers_per_band or (50 if quick else 250),
        rounds=args.rounds or (5 if quick else 8),
        celebrity_followers=args.celebrity_followers or (100_000 if quick else 1_000_000),
        workers=max(1, args.workers),
        redis_url=args.redis_url,
        pg={
            "host": args.pg_host,
            "port": args.pg_port,
            "user": args.pg_user,
            "password": args.pg_password,
            "dbname": args.pg_dbname,
        },
        workload=args.workload,
        write_doc=not args.no_doc,
        all_timelines=(args.timelines or ("all" if quick else "readers")) == "all",
    )


# -- Redis helpers ----------------------------------------------------------------


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """UNLINK every key starting with ``prefix`` (what ``RedisFeedProvider.clear`` does)."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            deleted += int(client.unlink(*batch))
            batch = []
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


@dataclass(frozen=True)
class ServerSnapshot:
    """Counters of the Redis server: CPU seconds and EVALSHA time."""

    cpu: float
    evalsha_calls: int
    evalsha_usec: int
    memory: int

    @classmethod
    def take(cls, client: redis.Redis) -> ServerSnapshot:
        cpu = client.info("cpu")
        stats = client.info("commandstats").get("cmdstat_evalsha", {})
        return cls(
            float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
            int(stats.get("calls", 0)),
            int(stats.get("usec", 0)),
            used_memory(client),
        )


def tl_key(namespace: str, feed: str) -> str:
    """A capped feed's window cache (key schema in ``adapters/redis/feeds.py``)."""
    return f"{namespace}:{{{feed}}}:tl"


def count_holding(client: redis.Redis, namespace: str, feeds: Sequence[str], member: bytes) -> int:
    """How many of ``feeds`` have ``member`` in their timeline cache."""
    held = 0
    for start in range(0, len(feeds), 10_000):
        with client.pipeline(transaction=False) as pipe:
            for feed in feeds[start : start + 10_000]:
                pipe.zscore(tl_key(namespace, feed), member)
            held += sum(score is not None for score in pipe.execute())
    return held


REDIS_BENCHMARK_RATE = re.compile(r"([0-9.]+) requests per second")


def redis_benchmark_zadd(
    client: redis.Redis, prefix: str, requests: int = 1_000_000
) -> tuple[float, str]:
    """Raw ZADD rate of ``redis-benchmark -P 100`` into random keys; the command."""
    conn: dict[str, Any] = client.connection_pool.connection_kwargs
    command = [
        "redis-benchmark", "-h", str(conn.get("host", "127.0.0.1")),
        "-p", str(conn.get("port", 6379)), "-P", "100", "-n", str(requests), "-r", "100000",
        "-q", "zadd", f"{prefix}__rand_int__", "__rand_int__", "member:__rand_int__",
    ]  # fmt: skip
    if conn.get("db"):
        command[5:5] = ["--dbnum", str(conn["db"])]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout
    rates = REDIS_BENCHMARK_RATE.findall(out.replace("\r", "\n"))
    if not rates:
        raise RuntimeError(f"cannot read the rate in redis-benchmark's output: {out[-300:]!r}")
    return float(rates[-1]), " ".join(command)


def redis_py_zadd(client: redis.Redis, prefix: str, count: int = 200_000) -> float:
    """Plain ZADDs into random keys from Python, pipelined 5,000 a round trip."""
    rng = random.Random(7)
    commands = [
        (f"{prefix}{rng.randrange(100_000)}", rng.randrange(100_000), f"m:{rng.randrange(100_000)}")
        for _ in range(count)
    ]
    start = time.perf_counter()
    for first in range(0, count, 5000):
        with client.pipeline(transaction=False) as pipe:
            for key, score, member in commands[first : first + 5000]:
                pipe.zadd(key, {member: score})
            pipe.execute()
    return count / (time.perf_counter() - start)


def hybrid_parameter() -> str | None:
    """The name of RedisFeedProvider's celebrity threshold, if it has one yet."""
    names = inspect.signature(RedisFeedProvider.__init__).parameters
    return next((name for name in names if "celebrit" in name or "hybrid" in name), None)


def plain_provider(client: redis.Redis, namespace: str) -> RedisFeedProvider:
    """A provider that fans out every post (no hybrid threshold, if there is one)."""
    hybrid = hybrid_parameter()
    kwargs: dict[str, Any] = {hybrid: None} if hybrid else {}
    return RedisFeedProvider(client, namespace, **kwargs)


# -- 1 and 4: fan-out of one account's posts --------------------------------------


@dataclass
class PostResult:
    followers: int
    written: int
    seconds: float
    redis_cpu: float
    evalsha_usec_per_entry: float
    memory_delta: int

    @property
    def rate(self) -> float:
        return self.written / self.seconds


@dataclass
class FanoutResult:
    followers: int
    setup_seconds: float
    posts: list[PostResult]
    full: list[PostResult]  # into caches already at the cap
    zadd_before: float
    zadd_after: float
    redis_benchmark_command: str
    redis_py_zadd: float

    @property
    def zadd(self) -> float:
        return (self.zadd_before + self.zadd_after) / 2

    @property
    def appends(self) -> list[PostResult]:
        return self.posts[1:]

    @property
    def append_rate(self) -> float:
        return median([p.rate for p in self.appends])

    @property
    def shedding(self) -> PostResult:
        """The first post into caches at the cap: each sheds its oldest tenth."""
        return self.full[0]

    @property
    def after_shedding_rate(self) -> float:
        return median([p.rate for p in self.full[1:]])

    @property
    def full_rate(self) -> float:
        """Entries per second into an active reader's cache over a whole cycle:
        one post in a tenth of the cap sheds, the others find room."""
        cycle = DEFAULT_TIMELINE_CAP // 10
        seconds = self.shedding.seconds + (cycle - 1) * self.followers / self.after_shedding_rate
        return cycle * self.followers / seconds


def follow_star(provider: RedisFeedProvider, star: FeedId, followers: Sequence[str]) -> float:
    """``followers`` (timeline feed names) follow ``star``; return the seconds taken."""
    start = time.perf_counter()
    for first in range(0, len(followers), FOLLOW_CHUNK):
        chunk = followers[first : first + FOLLOW_CHUNK]
        provider.follow_many((Follow(FeedId.parse(f), star) for f in chunk), activity_copy_limit=0)
        if first and first % 200_000 == 0:
            log(f"  {first:,} followers set up")
    return time.perf_counter() - start


def star_post(
    client: redis.Redis,
    provider: RedisFeedProvider,
    star: FeedId,
    followers: Sequence[str],
    number: int,
) -> PostResult:
    """One post by ``star``, timed, with what the server spent and what it wrote."""
    when = datetime(2025, 6, 1, 12, 0, number)
    fid = post_foreign_id(uuid.uuid5(POST_NAMESPACE, f"{star}:{number}"))
    activity = Activity(star.id, "tweet", fid, fid, when)
    before = ServerSnapshot.take(client)
    start = time.perf_counter()
    aid = provider.add_activity(star, activity)
    seconds = time.perf_counter() - start
    after = ServerSnapshot.take(client)
    written = count_holding(client, provider.namespace, followers, uuid.UUID(aid).bytes)
    return PostResult(
        followers=len(followers),
        written=written,
        seconds=seconds,
        redis_cpu=after.cpu - before.cpu,
        evalsha_usec_per_entry=(after.evalsha_usec - before.evalsha_usec) / max(1, written),
        memory_delta=after.memory - before.memory,
    )


def bench_fanout(client: redis.Redis, cfg: Config, namespace: str, zprefix: str) -> FanoutResult:
    provider = plain_provider(client, namespace)
    star = user_feed("star")
    followers = [f"timeline:f{i}" for i in range(cfg.fanout_followers)]
    log(f"fan-out: {len(followers):,} followers follow {star}")
    setup = follow_star(provider, star, followers)
    log("fan-out: redis-benchmark ZADD (before)")
    before, command = redis_benchmark_zadd(client, zprefix + "rb:")
    py_rate = redis_py_zadd(client, zprefix + "py:")
    posts = []
    for number in range(cfg.fanout_posts):
        posts.append(star_post(client, provider, star, followers, number))
        log(f"fan-out: post {number}: {posts[-1].rate:,.0f} entries/s")
    fill_caches(client, provider, followers)
    full = []
    for number in range(cfg.fanout_posts, cfg.fanout_posts + 3):
        full.append(star_post(client, provider, star, followers, number))
        log(f"fan-out: post {number} into full caches: {full[-1].rate:,.0f} entries/s")
    log("fan-out: redis-benchmark ZADD (after)")
    after, _ = redis_benchmark_zadd(client, zprefix + "rb:")
    provider.clear()
    delete_prefix(client, zprefix)
    return FanoutResult(len(followers), setup, posts, full, before, after, command, py_rate)


def fill_caches(client: redis.Redis, provider: RedisFeedProvider, followers: Sequence[str]) -> None:
    """Bring every follower's cache to the cap, as an active reader's is: ``COPY``
    of one cache of ``timeline_cap`` older entries (a listpack) over each."""
    template = f"{provider.namespace}:template"
    rng = random.Random(3)
    base = 1_700_000_000_000_000  # November 2023, older than the posts, in microseconds
    # A cache scores its entries by negated time (the newest first).
    entries = {rng.randbytes(16): -(base + i * 1_000_000) for i in range(provider.timeline_cap)}
    client.zadd(template, entries)
    log(f"fan-out: filling {len(followers):,} caches to {provider.timeline_cap} entries")
    for first in range(0, len(followers), 5000):
        with client.pipeline(transaction=False) as pipe:
            for feed in followers[first : first + 5000]:
                pipe.copy(template, tl_key(provider.namespace, feed), replace=True)
            pipe.execute()
    client.unlink(template)


@dataclass
class CelebrityResult:
    followers: int
    setup_seconds: float
    plain: PostResult
    plain_reads: list[float]  # a follower's feed read after the plain post, seconds
    hybrid: PostResult | None
    hybrid_reads: list[float]  # ... after the hybrid post
    hybrid_note: str  # why there is no hybrid row, or its threshold
    hybrid_seen: int  # follower reads whose first item is the hybrid post


def sample_reads(
    provider: RedisFeedProvider, followers: Sequence[str], count: int = 300
) -> tuple[list[float], list[str]]:
    """``provider.read`` of ``count`` followers' timelines: seconds, and each first item's id."""
    rng = random.Random(5)
    chosen = rng.sample(list(followers), min(count, len(followers)))
    seconds: list[float] = []
    firsts: list[str] = []
    for feed in chosen:
        start = time.perf_counter()
        items = provider.read(FeedId.parse(feed), limit=PAGE)
        seconds.append(time.perf_counter() - start)
        firsts.append(items[0].id if items else "")
    return seconds, firsts


def bench_celebrity(client: redis.Redis, cfg: Config, namespace: str) -> CelebrityResult:
    provider = plain_provider(client, namespace)
    star = user_feed("celebrity")
    followers = [f"timeline:c{i}" for i in range(cfg.celebrity_followers)]
    log(f"celebrity: {len(followers):,} followers follow {star}")
    setup = follow_star(provider, star, followers)
    plain = star_post(client, provider, star, followers, 0)
    log(f"celebrity: plain fan-out {plain.seconds:.1f} s, {plain.written:,} entries")
    plain_reads, _ = sample_reads(provider, followers)
    hybrid: PostResult | None = None
    hybrid_reads: list[float] = []
    seen = 0
    note = "not yet implemented"
    if hybrid_parameter() == "celebrity_threshold":
        # The hybrid path exists: post again through a provider with the wired threshold.
        threshold = DEFAULT_CELEBRITY_THRESHOLD
        note = f"`celebrity_threshold={threshold:,}`"
        hybrid_provider = RedisFeedProvider(client, namespace, celebrity_threshold=threshold)
        hybrid = star_post(client, hybrid_provider, star, followers, 1)
        log(f"celebrity: hybrid {hybrid.seconds * 1000:.0f} ms, {hybrid.written:,} entries")
        hybrid_reads, firsts = sample_reads(hybrid_provider, followers)
        fid = post_foreign_id(uuid.uuid5(POST_NAMESPACE, f"{star}:1"))
        aid = activity_id(fid, datetime(2025, 6, 1, 12, 0, 1))
        seen = sum(first == aid for first in firsts)
    provider.clear()
    return CelebrityResult(
        len(followers), setup, plain, plain_reads, hybrid, hybrid_reads, note, seen
    )


# -- 2: the network --------------------------------------------------------------


@dataclass
class Post:
    index: int
    author: int
    at: datetime
    text: str
    entities: list[dict[str, Any]]

    @property
    def post_id(self) -> uuid.UUID:
        return uuid.uuid5(POST_NAMESPACE, str(self.index))


@dataclass
class Network:
    names: list[str]  # Chirp usernames
    followees: list[set[int]]
    posts: list[Post]
    ops: dict[str, int]

    @property
    def edges(self) -> int:
        return sum(len(f) for f in self.followees)

    def follower_counts(self) -> list[int]:
        """How many users follow each user."""
        counts = [0] * len(self.names)
        for followees in self.followees:
            for followee in followees:
                counts[followee] += 1
        return counts


def generate_workload(cfg: Config, scratch: Path) -> Path:
    if cfg.workload is not None:
        return cfg.workload
    if not GENERATOR.is_file():
        raise RuntimeError(f"no workload generator at {GENERATOR}")
    path = scratch / f"workload-{cfg.users}-{cfg.seed}.jsonl"
    log(f"network: generating the workload for {cfg.users:,} users")
    subprocess.run(
        [sys.executable, str(GENERATOR), "--users", str(cfg.users), "--seed", str(cfg.seed),
         "-o", str(path)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return path


def read_network(path: Path) -> Network:
    """The final state of a workload: follows less unfollows, posts less deletes."""
    names: list[str] = []
    index: dict[str, int] = {}
    followees: list[set[int]] = []
    raw_posts: list[tuple[int, str, str]] = []
    deleted: set[int] = set()
    ops: dict[str, int] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            op = json.loads(line)
            kind = op["op"]
            ops[kind] = ops.get(kind, 0) + 1
            if kind == "register":
                index[op["username"]] = len(names)
                names.append(chirp_username(op["username"]))
                followees.append(set())
            elif kind == "follow":
                followees[index[op["follower"]]].add(index[op["followee"]])
            elif kind == "unfollow":
                followees[index[op["follower"]]].discard(index[op["followee"]])
            elif kind == "post":
                raw_posts.append((index[op["username"]], op["text"], op["at"]))
            elif kind == "delete":
                deleted.add(int(op["post_index"]))
    known = {name.lower(): name for name in names}
    posts = []
    for number, (author, text, at) in enumerate(raw_posts):
        if number in deleted:
            continue
        text = chirp_text(text)
        entities = [e.as_dict() for e in find_entities(text, known)]
        posts.append(Post(number, author, parse_time(at), text, entities))
    return Network(names, followees, posts, ops)


@dataclass
class _Posted:
    """The fields of ``Tweet.Posted`` that ``post_activity`` reads."""

    originator_id: uuid.UUID
    author: str
    posted_at: datetime
    entities: list[dict[str, Any]]


def activity_of(network: Network, post: Post) -> Activity:
    """The activity the feed projector makes of this post (hashtag and mention targets)."""
    event = _Posted(post.post_id, network.names[post.author], post.at, post.entities)
    return post_activity(cast(Tweet.Posted, event))


# Loading workers are forked: they find the network here instead of being sent it.
_SHARED: dict[str, Any] = {}


def _load_follows(part: int) -> int:
    network: Network = _SHARED["network"]
    parts: int = _SHARED["parts"]
    done = _SHARED["done"]
    provider = plain_provider(redis.Redis.from_url(_SHARED["url"]), _SHARED["namespace"])
    chunk: list[Follow] = []

    def flush() -> None:
        provider.follow_many(chunk, activity_copy_limit=DEFAULT_COPY_LIMIT)
        with done.get_lock():
            done.value += len(chunk)
        chunk.clear()

    builders: list[int] = _SHARED["builders"]
    for reader in builders[part::parts]:
        name = network.names[reader]
        timeline = timeline_feed(name)
        # The home timeline follows its owner's feed (as on registration), then the followees.
        chunk.append(Follow(timeline, user_feed(name)))
        chunk.extend(
            Follow(timeline, user_feed(network.names[f])) for f in network.followees[reader]
        )
        if len(chunk) >= FOLLOW_CHUNK:
            flush()
    if chunk:
        flush()
    return part


def _load_posts(part: int) -> int:
    network: Network = _SHARED["network"]
    parts: int = _SHARED["parts"]
    done = _SHARED["done"]
    provider = plain_provider(redis.Redis.from_url(_SHARED["url"]), _SHARED["namespace"])
    count = 0
    # In time order, as they were posted: each post goes to the head of its
    # followers' caches (scored by negated time), and a full cache sheds.
    for post in network.posts:
        if post.author % parts != part:
            continue
        provider.add_activity(user_feed(network.names[post.author]), activity_of(network, post))
        count += 1
        if count % 200 == 0:
            with done.get_lock():
                done.value += 200
    with done.get_lock():
        done.value += count % 200
    return part


def run_parts(
    work: Callable[[int], int],
    total: int,
    what: str,
    cfg: Config,
    namespace: str,
    network: Network,
    builders: list[int],
) -> float:
    """Run ``work`` over ``cfg.workers`` forked processes; return the seconds taken."""
    context = multiprocessing.get_context("fork")
    done = context.Value("q", 0)
    _SHARED.update(network=network, parts=cfg.workers, done=done, url=cfg.redis_url)
    _SHARED["builders"] = builders
    _SHARED["namespace"] = namespace
    start = time.perf_counter()
    # The workers must die at once when the pool ends them: without this
    # they inherit main's SIGTERM handler, whose SystemExit can leave one of
    # them waiting forever on a lock a terminated sibling held.
    with context.Pool(cfg.workers, initializer=_default_sigterm) as pool:
        pending = pool.map_async(work, range(cfg.workers))
        while not pending.ready():
            pending.wait(30)
            elapsed = time.perf_counter() - start
            log(f"  {what}: {done.value:,} of {total:,} in {elapsed:,.0f} s")
        pending.get()
    _SHARED.clear()
    return time.perf_counter() - start


@dataclass
class LoadResult:
    follow_seconds: float
    post_seconds: float
    fanout_entries: int
    timelines: int
    all_entries: int  # had every home timeline been built
    catalog_seconds: float
    baseline_seconds: float
    redis_bytes: int


def load_postgres(
    conn: psycopg.Connection[Any], schema: str, network: Network
) -> tuple[float, float]:
    """The catalog's tables and the baseline's, by COPY; seconds for each."""
    start = time.perf_counter()
    followers = network.follower_counts()
    posts_count = [0] * len(network.names)
    for post in network.posts:
        posts_count[post.author] += 1
    registered = datetime(2025, 1, 1, tzinfo=UTC)
    with conn.cursor() as cur:
        with cur.copy(
            f"COPY {schema}.chirp_catalog_users (username_key, username, display_name, bio, "
            "registered_at, followers_count, following_count, posts_count) FROM STDIN"
        ) as copy:
            for i, name in enumerate(network.names):
                row = (name.lower(), name, name, "", registered, followers[i],
                       len(network.followees[i]), posts_count[i])  # fmt: skip
                copy.write_row(row)
        with cur.copy(
            f"COPY {schema}.chirp_catalog_posts "
            "(post_id, author, author_key, text, posted_at, entities) FROM STDIN"
        ) as copy:
            for post in network.posts:
                name = network.names[post.author]
                copy.write_row(
                    (
                        post.post_id,
                        name,
                        name.lower(),
                        post.text,
                        post.at,
                        json.dumps(post.entities),
                    )
                )
    conn.commit()
    catalog_seconds = time.perf_counter() - start
    start = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {schema}.users (id integer PRIMARY KEY, username text NOT NULL, "
            "display_name text NOT NULL)"
        )
        cur.execute(
            f"CREATE TABLE {schema}.posts (id bigint PRIMARY KEY, author_id integer NOT NULL, "
            "created_at timestamptz NOT NULL, text text NOT NULL)"
        )
        cur.execute(
            f"CREATE TABLE {schema}.follows (follower_id integer NOT NULL, "
            "followee_id integer NOT NULL)"
        )
        with cur.copy(f"COPY {schema}.users (id, username, display_name) FROM STDIN") as copy:
            for i, name in enumerate(network.names):
                copy.write_row((i, name, name))
        with cur.copy(f"COPY {schema}.posts (id, author_id, created_at, text) FROM STDIN") as copy:
            for post in network.posts:
                copy.write_row((post.index, post.author, post.at, post.text))
        with cur.copy(f"COPY {schema}.follows (follower_id, followee_id) FROM STDIN") as copy:
            for reader, followees in enumerate(network.followees):
                for f in followees:
                    copy.write_row((reader, f))
        cur.execute(f"ALTER TABLE {schema}.follows ADD PRIMARY KEY (follower_id, followee_id)")
        cur.execute(f"CREATE INDEX ON {schema}.follows (followee_id)")
        cur.execute(f"CREATE INDEX ON {schema}.posts (author_id, created_at DESC)")
    conn.commit()
    conn.execute(f"ANALYZE {schema}.users")
    conn.execute(f"ANALYZE {schema}.posts")
    conn.execute(f"ANALYZE {schema}.follows")
    conn.execute(f"ANALYZE {schema}.chirp_catalog_users")
    conn.execute(f"ANALYZE {schema}.chirp_catalog_posts")
    conn.commit()
    return catalog_seconds, time.perf_counter() - start


def load_network(
    client: redis.Redis,
    conn: psycopg.Connection[Any],
    cfg: Config,
    namespace: str,
    schema: str,
    network: Network,
    builders: list[int],
) -> LoadResult:
    """Both sides of the network; in Redis the home timelines of ``builders`` only."""
    log(f"network: COPY into PostgreSQL ({len(network.posts):,} posts, {network.edges:,} follows)")
    catalog_seconds, baseline_seconds = load_postgres(conn, schema, network)
    memory = used_memory(client)
    edges = sum(len(network.followees[u]) + 1 for u in builders)
    log(f"network: follow_many, {edges:,} edges of {len(builders):,} timelines")
    follow_seconds = run_parts(_load_follows, edges, "follows", cfg, namespace, network, builders)
    built = [False] * len(network.names)
    for u in builders:
        built[u] = True
    followers = [int(built[u]) for u in range(len(network.names))]  # its own timeline
    for u in builders:
        for f in network.followees[u]:
            followers[f] += 1
    fanout = sum(followers[p.author] for p in network.posts)
    everyone = [count + 1 for count in network.follower_counts()]  # and its own timeline
    all_entries = sum(everyone[p.author] for p in network.posts)
    log(f"network: add_activity for {len(network.posts):,} posts ({fanout:,} timeline entries)")
    post_seconds = run_parts(
        _load_posts, len(network.posts), "posts", cfg, namespace, network, builders
    )
    return LoadResult(
        follow_seconds,
        post_seconds,
        fanout,
        len(builders),
        all_entries,
        catalog_seconds,
        baseline_seconds,
        used_memory(client) - memory,
    )


def sample_readers(cfg: Config, network: Network) -> list[tuple[BandResult, int]]:
    """``cfg.readers_per_band`` readers drawn from each band of followees."""
    rng = random.Random(cfg.seed)
    readers: list[tuple[BandResult, int]] = []
    for name, low, high in BANDS:
        members = [u for u, f in enumerate(network.followees) if low <= len(f) <= high]
        chosen = rng.sample(members, min(cfg.readers_per_band, len(members)))
        band = BandResult(name, len(members), len(chosen))
        readers += [(band, u) for u in chosen]
    return readers


@dataclass
class BandResult:
    name: str
    population: int
    readers: int
    chirp: list[float] = field(default_factory=list)  # seconds
    baseline: list[float] = field(default_factory=list)
    feed_read: list[float] = field(default_factory=list)  # of which the Redis read
    # The first read of each reader, untimed in the table: Chirp's catalog
    # cache has not seen the page's older posts yet.
    first_chirp: list[float] = field(default_factory=list)
    first_baseline: list[float] = field(default_factory=list)


@dataclass
class ReadResult:
    bands: list[BandResult]
    pages_checked: int
    pages_agreeing: int
    short_pages: int
    hybrid_feeds: int  # feeds past the threshold in the loaded network
    catalog_misses: int = 0  # posts the timed pages had to read from PostgreSQL
    # Chirp's pages again, unweighted, without PostgreSQL between them: one
    # right after another, and each after an idle pause (seconds).
    back_to_back: list[float] = field(default_factory=list)
    after_pause: list[float] = field(default_factory=list)

    def weighted(self, side: str, q: float) -> float:
        """The ``q`` quantile over all readers, each band weighted by its share of users."""
        samples: list[tuple[float, float]] = []
        for band in self.bands:
            values: list[float] = getattr(band, side)
            if values:
                weight = band.population / len(values)
                samples += [(v, weight) for v in values]
        return weighted_quantile(samples, q)


def median(values: Sequence[float]) -> float:
    return quantile(values, 0.5)


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def weighted_quantile(samples: list[tuple[float, float]], q: float) -> float:
    ordered = sorted(samples)
    total = sum(w for _, w in ordered)
    cumulative = 0.0
    for value, weight in ordered:
        cumulative += weight
        if cumulative >= q * total:
            return value
    return ordered[-1][0]


class TimedRead:
    """Wraps a provider read to time it inside a page."""

    def __init__(self, read: Callable[..., Any]) -> None:
        self.read = read
        self.last = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.read(*args, **kwargs)
        finally:
            self.last += time.perf_counter() - start


def bench_reads(
    cfg: Config,
    namespace: str,
    schema: str,
    network: Network,
    client: redis.Redis,
    readers: list[tuple[BandResult, int]],
) -> ReadResult:
    # Read as the wiring does, with the celebrity threshold.
    provider = RedisFeedProvider(client, namespace, celebrity_threshold=DEFAULT_CELEBRITY_THRESHOLD)
    hybrid_feeds = int(client.scard(f"{namespace}:hybrid"))
    timed = TimedRead(provider.read_with_catalog_cache)
    provider.read_with_catalog_cache = timed  # type: ignore[method-assign]
    datastore = PostgresDatastore(
        cfg.pg["dbname"], cfg.pg["host"], cfg.pg["port"], cfg.pg["user"], cfg.pg["password"],
        schema=schema,
    )  # fmt: skip
    # The catalog and the pages as the wiring builds them with Redis feeds:
    # the catalog cached in Redis, pages read with it in one script.
    catalog = RedisCatalogCache(PostgresCatalog(datastore), client, namespace)
    queries = FeedQueries(provider, catalog, RedisPageReader(provider, catalog))
    rng = random.Random(cfg.seed)
    readers = list(readers)
    bands = list({id(band): band for band, _ in readers}.values())
    index = {name: i for i, name in enumerate(network.names)}
    post_ids = {p.index: p.post_id for p in network.posts}
    baseline = psycopg.connect(**cfg.pg, autocommit=True)
    baseline.execute(f"SET search_path TO {schema}")
    try:

        def chirp_page(reader: int) -> list[tuple[uuid.UUID, int]]:
            page = queries.home_timeline(network.names[reader], limit=PAGE)
            return [(item.post_id, index[item.author.username]) for item in page.items]

        def baseline_page(reader: int) -> list[uuid.UUID]:
            rows = baseline.execute(BASELINE_QUERY, {"reader": reader}).fetchall()
            return [post_ids[row[0]] for row in rows]

        # Warm both up, and check that they show the same posts: Chirp's page
        # also holds posts mentioning the reader, which the baseline leaves out.
        log(f"reads: warming up and checking {len(readers)} readers")
        agreeing = short = 0
        for band, reader in readers:
            start = time.perf_counter()
            mine = chirp_page(reader)
            band.first_chirp.append(time.perf_counter() - start)
            start = time.perf_counter()
            theirs = baseline_page(reader)
            band.first_baseline.append(time.perf_counter() - start)
            allowed = network.followees[reader] | {reader}
            followed = [pid for pid, author in mine if author in allowed]
            agreeing += followed == theirs[: len(followed)]
            short += len(mine) < min(PAGE, len(theirs))
        log(f"reads: {cfg.rounds} rounds of {len(readers)} readers, Chirp beside PostgreSQL")
        # This process holds the whole network (millions of objects) that a
        # web worker would not: keep the collector from walking it mid-read,
        # for both sides alike.
        gc.collect()
        gc.freeze()
        misses = MissCounter(catalog)
        for number in range(cfg.rounds):
            rng.shuffle(readers)
            for band, reader in readers:
                sides: list[tuple[str, Callable[[int], object]]] = [
                    ("chirp", chirp_page),
                    ("baseline", baseline_page),
                ]
                if number % 2:
                    sides.reverse()
                for side, read in sides:
                    timed.last = 0.0
                    start = time.perf_counter()
                    read(reader)
                    elapsed = time.perf_counter() - start
                    getattr(band, side).append(elapsed)
                    if side == "chirp":
                        band.feed_read.append(timed.last)
        back_to_back, after_pause = chirp_alone(chirp_page, [reader for _, reader in readers])
    finally:
        baseline.close()
        catalog.close()
    return ReadResult(
        bands, len(readers), agreeing, short, hybrid_feeds, misses.posts, back_to_back, after_pause
    )


def chirp_alone(
    chirp_page: Callable[[int], object], readers: list[int]
) -> tuple[list[float], list[float]]:
    """Each reader's page with nothing between pages, then each after an
    idle pause (``IDLE_PAUSE``, a PostgreSQL page's time): how much of a
    Chirp page's time in the alternating rounds is this machine waking up
    from a wait, not the page's own work."""
    back_to_back: list[float] = []
    after_pause: list[float] = []
    for reader in readers:
        start = time.perf_counter()
        chirp_page(reader)
        back_to_back.append(time.perf_counter() - start)
    for reader in readers:
        time.sleep(IDLE_PAUSE)  # the condition measured, not a wait for anything
        start = time.perf_counter()
        chirp_page(reader)
        after_pause.append(time.perf_counter() - start)
    return back_to_back, after_pause


class MissCounter:
    """Counts the posts ``cache`` asks its catalog for (its misses)."""

    def __init__(self, cache: RedisCatalogCache) -> None:
        self.posts = 0
        inner = cache.catalog
        lookup = inner.posts_with_authors

        def counted(post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, AuthoredPost]:
            asked = list(post_ids)
            self.posts += len(asked)
            return lookup(asked)

        inner.posts_with_authors = counted  # type: ignore[method-assign]


def make_celebrities_hybrid(client: redis.Redis, namespace: str, network: Network) -> int:
    """Turn the accounts with more followers than the wired threshold hybrid,
    as the wiring would had every timeline been built: each posts once through
    a provider with threshold 0 (any follower makes it hybrid), then the post
    is deleted. Their posts already in the caches stay; reads now merge them
    too, which is the cost measured. Returns how many feeds are hybrid."""
    followers = network.follower_counts()
    turner = RedisFeedProvider(client, namespace, celebrity_threshold=0)
    # Turned hybrid at this post, the feed writes it to no cache; the post
    # is older than every other one, so no page would show it meanwhile.
    when = datetime(2000, 1, 1)
    for user, count in enumerate(followers):
        if count > DEFAULT_CELEBRITY_THRESHOLD:
            feed = user_feed(network.names[user])
            fid = f"bench:hybrid:{user}"
            turner.add_activity(feed, Activity(feed.id, "tweet", fid, fid, when))
            turner.remove_activity(feed, fid)
    return int(client.scard(f"{namespace}:hybrid"))


# -- 3: memory --------------------------------------------------------------------


@dataclass
class MemoryResult:
    full_timelines: int
    full_bytes_per_entry: float
    all_timelines: int
    all_bytes_per_entry: float
    encodings: dict[str, int]
    cap: int


def bench_memory(client: redis.Redis, namespace: str, network: Network, cap: int) -> MemoryResult:
    """``MEMORY USAGE`` of timeline caches: those at the cap, and all of them."""
    keys = [tl_key(namespace, str(timeline_feed(name))) for name in network.names]
    sizes: list[int] = []
    usages: list[int] = []
    encodings: dict[str, int] = {}
    for first in range(0, len(keys), 5000):
        chunk = keys[first : first + 5000]
        with client.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.zcard(key)
                pipe.memory_usage(key, samples=0)
                pipe.object("encoding", key)
            replies = pipe.execute()
        for i in range(len(chunk)):
            size, usage, encoding = replies[3 * i : 3 * i + 3]
            if size:
                sizes.append(int(size))
                usages.append(int(usage))
                kind = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
                encodings[kind] = encodings.get(kind, 0) + 1
    # A full cache sheds its oldest tenth when a write finds it at the cap.
    full = [(s, u) for s, u in zip(sizes, usages, strict=True) if s > cap - cap // 10]
    return MemoryResult(
        full_timelines=len(full),
        full_bytes_per_entry=sum(u for _, u in full) / max(1, sum(s for s, _ in full)),
        all_timelines=len(sizes),
        all_bytes_per_entry=sum(usages) / max(1, sum(sizes)),
        encodings=encodings,
        cap=cap,
    )


# -- report -----------------------------------------------------------------------


@dataclass
class Machine:
    date: str
    cpu: str
    cores: int
    memory_gib: float
    python: str
    redis_version: str
    postgres_version: str

    @classmethod
    def describe(cls, client: redis.Redis, conn: psycopg.Connection[Any]) -> Machine:
        cpu = "unknown CPU"
        memory = 0.0
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("MemTotal"):
                    memory = int(line.split()[1]) / 2**20
        row = conn.execute("SHOW server_version").fetchone()
        return cls(
            date=datetime.now(UTC).strftime("%Y-%m-%d"),
            cpu=cpu,
            cores=os.cpu_count() or 0,
            memory_gib=memory,
            python=platform.python_version(),
            redis_version=str(client.info("server")["redis_version"]),
            postgres_version=str(row[0]).split()[0] if row else "?",
        )


@dataclass
class Results:
    cfg: Config
    machine: Machine
    fanout: FanoutResult
    celebrity: CelebrityResult
    network: Network
    load: LoadResult
    reads: ReadResult
    hybrid_reads: ReadResult
    memory: MemoryResult
    seconds: float
    phases: dict[str, float]


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def read_table(reads: ReadResult, users: int) -> list[str]:
    """Chirp's pages beside PostgreSQL's, per band of followees and overall."""
    lines = [
        "| readers (followees) | users | Chirp p50 | Chirp p99 | of which Redis read p50 "
        "| PostgreSQL p50 | PostgreSQL p99 | p99 ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for band in reads.bands:
        if not band.chirp:
            continue
        cp99, bp99 = quantile(band.chirp, 0.99), quantile(band.baseline, 0.99)
        lines.append(
            f"| {band.name} | {band.population:,} | {ms(median(band.chirp))} ms | {ms(cp99)} ms | "
            f"{ms(median(band.feed_read))} ms | {ms(median(band.baseline))} ms | {ms(bp99)} ms | "
            f"{bp99 / cp99:.1f} x |"
        )
    chirp_p99, base_p99 = reads.weighted("chirp", 0.99), reads.weighted("baseline", 0.99)
    lines.append(
        f"| **all (weighted by users)** | {users:,} | {ms(reads.weighted('chirp', 0.5))} ms | "
        f"**{ms(chirp_p99)} ms** | {ms(reads.weighted('feed_read', 0.5))} ms | "
        f"{ms(reads.weighted('baseline', 0.5))} ms | **{ms(base_p99)} ms** | "
        f"**{base_p99 / chirp_p99:.1f} x** |"
    )
    return lines


def idle_note(reads: ReadResult) -> str:
    """Chirp's pages with and without an idle wait before each."""
    chirp = [v for band in reads.bands for v in band.chirp]
    return (
        "Chirp alone (the same readers' pages, each once, unweighted): one right after "
        f"another p50 {ms(quantile(reads.back_to_back, 0.5))} ms, "
        f"p99 {ms(quantile(reads.back_to_back, 0.99))} ms; each after an idle pause of "
        f"{IDLE_PAUSE * 1000:.0f} ms p50 {ms(quantile(reads.after_pause, 0.5))} ms, "
        f"p99 {ms(quantile(reads.after_pause, 0.99))} ms; in the rounds above, each after a "
        f"PostgreSQL page, p50 {ms(quantile(chirp, 0.5))} ms, p99 {ms(quantile(chirp, 0.99))} ms "
        "(unweighted). The same work costs more after a wait: this machine's processes "
        "wake from an idle wait slowly, and a PostgreSQL page also evicts what Chirp's "
        "page had in the CPU's caches."
    )


def first_reads(reads: ReadResult) -> str:
    """The warm-up pass, where Chirp's catalog cache meets each page first."""
    return (
        "First reads (the warm-up pass, untimed above: each reader's first page, whose "
        "older posts Chirp's catalog cache had not seen, so they were read from PostgreSQL "
        "and cached): Chirp "
        f"p50 {ms(reads.weighted('first_chirp', 0.5))} ms, "
        f"p99 {ms(reads.weighted('first_chirp', 0.99))} ms; PostgreSQL "
        f"p50 {ms(reads.weighted('first_baseline', 0.5))} ms, "
        f"p99 {ms(reads.weighted('first_baseline', 0.99))} ms (weighted by users)."
    )


def render(r: Results, plot: Path) -> str:
    cfg, f, c, load, reads, mem = r.cfg, r.fanout, r.celebrity, r.load, r.reads, r.memory
    hr = r.hybrid_reads
    hybrid_ratio = hr.weighted("baseline", 0.99) / hr.weighted("chirp", 0.99)
    first = f.posts[0]
    ratio = f.append_rate / f.zadd
    full_ratio = f.full_rate / f.zadd
    full_cpu = median([p.redis_cpu / p.written * 1e6 for p in f.full[1:]])
    full_evalsha = median([p.evalsha_usec_per_entry for p in f.full[1:]])
    chirp_p99, base_p99 = reads.weighted("chirp", 0.99), reads.weighted("baseline", 0.99)
    read_ratio = base_p99 / chirp_p99
    append_bytes = sum(p.memory_delta for p in f.appends) / sum(p.written for p in f.appends)
    evalsha = median([p.evalsha_usec_per_entry for p in f.appends])
    cpu_per_entry = median([p.redis_cpu / p.written * 1e6 for p in f.appends])
    title = "quick" if cfg.mode == "quick" else "full"
    hybrid_goal = c.hybrid_note
    celebrities = sum(n > DEFAULT_CELEBRITY_THRESHOLD for n in r.network.follower_counts())
    hybrid_row = f"| with the hybrid path (fan-out on read) | {c.hybrid_note} | | | | |"
    hybrid_reads = ""
    if c.hybrid is not None:
        h = c.hybrid
        hybrid_goal = (
            f"{h.seconds * 1000:,.1f} ms, {h.written:,} entries written, with {c.hybrid_note} "
            f"(plain fan-out: {c.plain.seconds:,.1f} s)"
        )
        hybrid_row = (
            f"| with the hybrid path ({c.hybrid_note}) | {h.written:,} | "
            f"**{h.seconds * 1000:,.1f} ms** | - | {h.redis_cpu:.2f} s | "
            f"{h.memory_delta / 2**20:,.1f} MiB |"
        )
        hybrid_reads = (
            f" A follower's feed read (`RedisFeedProvider.read`, 25, {len(c.plain_reads)} "
            f"followers): p50 {ms(median(c.plain_reads))} ms, p99 "
            f"{ms(quantile(c.plain_reads, 0.99))} ms after the plain post; p50 "
            f"{ms(median(c.hybrid_reads))} ms, p99 {ms(quantile(c.hybrid_reads, 0.99))} ms "
            "after the hybrid one, which reads merge in (in the read script): it came first on "
            f"{c.hybrid_seen} of {len(c.hybrid_reads)} pages."
        )
    whose, only = "every home timeline", ""
    if load.timelines < len(r.network.names):
        hours = load.all_entries / f.append_rate / 3600
        whose = f"**the home timelines of the {load.timelines:,} sampled readers only**"
        only = (
            " Only the readers' timelines were built: every post is still added and fanned "
            "out, to those of them that follow its author; the other users' timelines change "
            "nothing in what a reader's page costs, and building all "
            f"{len(r.network.names):,} ({load.all_entries:,} entries) would take about "
            f"{hours:.1f} hours at the rate of section 1 (`--timelines all` does it)."
        )
    minutes = r.seconds / 60
    lines = [
        f"## Feeds on Redis: fan-out, home-timeline reads, memory, celebrity posts ({title})",
        "",
        f"    {cfg.command}",
        "",
        f"{r.machine.date}; {r.machine.cores} cores ({r.machine.cpu}), "
        f"{r.machine.memory_gib:.0f} GiB, Python {r.machine.python}, "
        f"Redis {r.machine.redis_version}, PostgreSQL {r.machine.postgres_version}, "
        "all on this machine. The run took "
        f"**{minutes:.1f} minutes** ("
        + ", ".join(f"{name} {secs / 60:.1f}" for name, secs in r.phases.items())
        + "). Figures of one table were measured side by side in this run: compare ratios.",
        "",
        f"![fan-out rates and read latencies]({plot.relative_to(DOC.parent).as_posix()})",
        "",
        "### Goals",
        "",
        "| goal | measured | |",
        "| --- | --- | --- |",
        f"| fan-out >= 0.5 x raw `redis-benchmark -P 100` ZADD | {ratio:.3f} x into small "
        f"caches, {full_ratio:.3f} x into full ones ({f.append_rate:,.0f} and "
        f"{f.full_rate:,.0f} vs {f.zadd:,.0f} per second) | {verdict(ratio >= 0.5)} |",
        f"| home-timeline p99 >= 20 x lower than fan-out-on-read | {read_ratio:.1f} x "
        f"({ms(chirp_p99)} ms vs {ms(base_p99)} ms) | {verdict(read_ratio >= 20)} |",
        f"| the same, the celebrities hybrid (as wired) | {hybrid_ratio:.1f} x "
        f"({ms(hr.weighted('chirp', 0.99))} ms vs {ms(hr.weighted('baseline', 0.99))} ms) | "
        f"{verdict(hybrid_ratio >= 20)} |",
        f"| <= 40 bytes per timeline entry | {mem.full_bytes_per_entry:.1f} B "
        f"(full timelines of {mem.cap - mem.cap // 10 + 1} to {mem.cap} entries) | "
        f"{verdict(mem.full_bytes_per_entry <= 40)} |",
        f"| celebrity post with the hybrid path ({c.followers:,} followers) | {hybrid_goal} | - |",
        "",
        f"### 1. Fan-out: one account with {f.followers:,} followers posts",
        "",
        f"The followers' home timelines follow `user:star` (set up with `follow_many`, "
        f"{f.followers / f.setup_seconds:,.0f} edges/s); then `add_activity` posts "
        f"{len(f.posts)} times into fresh caches; then every cache is brought to the cap "
        f"({r.memory.cap} older entries, `COPY` of one listpack), as an active reader's is, and "
        f"it posts {len(f.full)} more times: the first write into each cache sheds its oldest "
        "tenth, the next ones find room. "
        "Entries are counted afterwards (`ZSCORE` in every follower's cache), not assumed. "
        "`redis-benchmark` ran before and after the posts:",
        "",
        f"    {f.redis_benchmark_command}",
        "",
        "| writer | entries/s | x raw ZADD | Redis CPU per entry | used_memory per entry |",
        "| --- | --- | --- | --- | --- |",
        f"| `redis-benchmark -P 100` ZADD, random keys | {f.zadd:,.0f} "
        f"(before {f.zadd_before:,.0f}, after {f.zadd_after:,.0f}) | 1 | "
        f"{1e6 / f.zadd:.1f} us (at most) | - |",
        f"| redis-py, pipelined plain ZADD (5,000 a round trip) | {f.redis_py_zadd:,.0f} | "
        f"{f.redis_py_zadd / f.zadd:.2f} | - | - |",
        f"| Chirp `add_activity`, first post (creates {first.written:,} caches) | "
        f"{first.rate:,.0f} | {first.rate / f.zadd:.3f} | "
        f"{first.redis_cpu / first.written * 1e6:.1f} us | "
        f"{first.memory_delta / first.written:.0f} B |",
        f"| Chirp `add_activity`, later posts (median of {len(f.appends)}) | "
        f"**{f.append_rate:,.0f}** | **{ratio:.3f}** | {cpu_per_entry:.1f} us "
        f"(EVALSHA {evalsha:.1f} us) | {append_bytes:.0f} B |",
        f"| Chirp `add_activity` into caches at the cap: the post that sheds a tenth | "
        f"{f.shedding.rate:,.0f} | {f.shedding.rate / f.zadd:.3f} | "
        f"{f.shedding.redis_cpu / f.shedding.written * 1e6:.1f} us | - |",
        f"| Chirp `add_activity` into 721-800-entry caches after it (median of "
        f"{len(f.full) - 1}) | {f.after_shedding_rate:,.0f} | "
        f"{f.after_shedding_rate / f.zadd:.3f} | {full_cpu:.1f} us "
        f"(EVALSHA {full_evalsha:.1f} us) | - |",
        f"| Chirp into full caches, a whole cycle (1 shedding post in "
        f"{DEFAULT_TIMELINE_CAP // 10}) | **{f.full_rate:,.0f}** | **{full_ratio:.3f}** | - | - |",
        "",
        f"Each post wrote {min(p.written for p in f.posts):,} to "
        f"{max(p.written for p in f.posts):,} entries in "
        f"{min(p.seconds for p in f.posts + f.full):.2f} to "
        f"{max(p.seconds for p in f.posts + f.full):.2f} s. Redis CPU is the server's "
        "`used_cpu_user + used_cpu_sys` over the post, EVALSHA its `commandstats` time "
        "(other clients of this server count too); the rest of the wall time is the "
        "client and the round trips: on this single server, `add_activity` sends one "
        "`fan_out_range` script call per 250 followers, which reads them and writes "
        "their caches (one `ZCARD` and one `ZADD` each, plus the eviction into a full "
        "cache), streamed in one round trip.",
        "",
        f"### 2. Home timeline, {PAGE} enriched items: Chirp beside fan-out-on-read",
        "",
        f"The shared workload for {cfg.users:,} users (seed {cfg.seed}; "
        + ", ".join(f"{v:,} {k}" for k, v in r.network.ops.items())
        + f"), final state: {len(r.network.posts):,} posts, {r.network.edges:,} follows. "
        "**Loaded directly, not through Chirp's commands**: through the event-sourced "
        "commands (about 350 ops/s, see the replay section) the 8.8M ops of 50,000 users "
        f"would take about 7 hours. Chirp's side: `follow_many` for {whose} "
        f"(its owner's feed and its followees', {load.follow_seconds:,.0f} s), then "
        "`add_activity` for every post with the projector's activity (hashtag and mention "
        f"targets), in time order, over {cfg.workers} processes (split by author): "
        f"{load.fanout_entries:,} timeline entries in {load.post_seconds:,.0f} s "
        f"({load.fanout_entries / load.post_seconds:,.0f}/s, full caches shedding as "
        "they go); the catalog's tables by COPY "
        f"({load.catalog_seconds:,.0f} s). Redis grew by {load.redis_bytes / 2**30:.2f} GiB.{only} "
        f"Baseline: `users`, `posts(author_id, created_at, text)` with an index on "
        f"`(author_id, created_at DESC)` and `follows(follower_id, followee_id)` (primary key), "
        f"by COPY ({load.baseline_seconds:,.0f} s with indexes and ANALYZE), queried as",
        "",
        f"    {BASELINE_QUERY}",
        "",
        "(the reader's own posts are included, as in Chirp's home timeline). Chirp's page is "
        "`FeedQueries.home_timeline` with the page reader the wiring builds for Redis feeds "
        "(`RedisPageReader`): one round trip on this single server, the feed's read script, "
        "which merges what hybrid feeds deliver, fetches the page's records, and reads what "
        "the catalog's cache in Redis holds of their posts and authors (the Redis read "
        "column); posts the cache misses are read from PostgreSQL in one query and cached "
        f"({reads.catalog_misses:,} posts in all the timed pages). The user is looked up only "
        "when the page is empty. The provider reads with the celebrity threshold the wiring passes "
        f"({DEFAULT_CELEBRITY_THRESHOLD:,}); the posts were loaded without it, so in this "
        f"first pass {reads.hybrid_feeds} feeds are hybrid: fan-out on write for everyone. "
        f"The network has {celebrities} accounts with more followers than the threshold: "
        "the second pass below makes them hybrid. "
        + "The bench process freezes its own data (the loaded network) out of Python's "
        "garbage collector before timing, for both sides alike: a web process holds no such "
        "data. One client, one request at a time, both warmed up first; "
        f"{reads.bands[0].readers} readers per band of followees (a band with fewer users "
        f"has all of them), {cfg.rounds} timed reads each, Chirp and PostgreSQL alternating. "
        "The overall row weights each band by its share of users (a uniformly drawn reader). "
        f"Check: on {reads.pages_agreeing} of {reads.pages_checked} readers the two pages show "
        "the same posts (Chirp's also shows posts mentioning the reader); "
        f"{reads.short_pages} Chirp pages were short.",
        "",
        *read_table(reads, len(r.network.names)),
        "",
        first_reads(reads),
        "",
        idle_note(reads),
        "",
        f"**With the celebrities hybrid.** Then each of the accounts with more than "
        f"{DEFAULT_CELEBRITY_THRESHOLD:,} followers posted once (the post deleted at once) "
        "through a provider with threshold 0, which turns it hybrid as the wired threshold "
        f"would with every timeline built: {hr.hybrid_feeds} feeds are hybrid now, and the "
        "same readers read again. Their posts stay in the caches, and a page now also merges "
        "them from each hybrid feed the reader follows (inside the same read script, which "
        "checks each such feed's newest posts against the reader's follow windows): what "
        "every page costs in production, where their posts are "
        f"not cached. Check: {hr.pages_agreeing} of {hr.pages_checked} pages agree with "
        f"PostgreSQL's, {hr.short_pages} short.",
        "",
        *read_table(hr, len(r.network.names)),
        "",
        "### 3. Memory per timeline entry",
        "",
        "| measure | bytes per entry |",
        "| --- | --- |",
        f"| `MEMORY USAGE` of full timeline caches ({mem.full_timelines:,}, holding "
        f"{mem.cap - mem.cap // 10 + 1} to {mem.cap} entries)"
        f" | **{mem.full_bytes_per_entry:.1f}** |",
        f"| `MEMORY USAGE` of all {mem.all_timelines:,} non-empty timeline caches "
        f"(encodings: {', '.join(f'{k} {v:,}' for k, v in sorted(mem.encodings.items()))}) | "
        f"{mem.all_bytes_per_entry:.1f} |",
        f"| `used_memory` delta of a post into {f.followers:,} existing caches (section 1) | "
        f"{append_bytes:.1f} |",
        f"| `used_memory` delta of a first post, creating {first.written:,} caches | "
        f"{first.memory_delta / first.written:.1f} |",
        "",
        "A timeline entry lives only in its feed's window cache (older entries are "
        "derived at read time from the followed feeds); the activity itself is stored once. "
        f"Everything loaded into Redis ({load.timelines:,} home timelines' follow windows and "
        f"caches, every post's record and ownership in its feeds) took "
        f"{load.redis_bytes / 2**30:.2f} GiB (`used_memory` delta).",
        "",
        f"### 4. Celebrity post: {c.followers:,} followers",
        "",
        "| path | entries written | time | entries/s | Redis CPU | used_memory delta |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| without the hybrid path (plain fan-out, `add_activity`) | {c.plain.written:,} | "
        f"**{c.plain.seconds:,.1f} s** | {c.plain.rate:,.0f} | {c.plain.redis_cpu:.1f} s | "
        f"{c.plain.memory_delta / 2**20:,.0f} MiB |",
        hybrid_row,
        "",
        f"Setting up the {c.followers:,} follows took {c.setup_seconds:,.0f} s "
        f"({c.followers / c.setup_seconds:,.0f} edges/s). The plain post ran first, through a "
        "provider without threshold; then one through a provider with the threshold the wiring "
        "passes (the account turns hybrid for good at that post)." + hybrid_reads,
        "",
    ]
    return "\n".join(lines)


def plot(r: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f, reads = r.fanout, r.reads
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels = [
        "redis-benchmark\n-P 100 ZADD",
        "redis-py\npipelined ZADD",
        "Chirp add_activity\n(first post)",
        "Chirp add_activity\n(later posts)",
        "Chirp add_activity\n(full caches)",
    ]
    rates = [f.zadd, f.redis_py_zadd, f.posts[0].rate, f.append_rate, f.full_rate]
    colors = ["#999999", "#bbbbbb", "#6a9fd4", "#1f5fa8", "#0b3768"]
    bars = left.barh(labels, rates, color=colors)
    left.bar_label(bars, labels=[f"{v / 1000:,.0f}k" for v in rates], padding=3)
    left.axvline(f.zadd / 2, color="#c0392b", linestyle="--", linewidth=1)
    left.text(f.zadd / 2, 4.45, " goal: 0.5 x raw", color="#c0392b", fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("timeline entries (ZADDs) written per second")
    left.set_title(f"Fan-out: one post to {f.followers:,} followers")
    left.set_xlim(0, max(rates) * 1.2)
    names = [b.name for b in reads.bands if b.chirp] + ["all\n(weighted)"]
    series = {
        "Chirp p50": [median(b.chirp) for b in reads.bands if b.chirp]
        + [reads.weighted("chirp", 0.5)],
        "Chirp p99": [quantile(b.chirp, 0.99) for b in reads.bands if b.chirp]
        + [reads.weighted("chirp", 0.99)],
        "PostgreSQL p50": [median(b.baseline) for b in reads.bands if b.baseline]
        + [reads.weighted("baseline", 0.5)],
        "PostgreSQL p99": [quantile(b.baseline, 0.99) for b in reads.bands if b.baseline]
        + [reads.weighted("baseline", 0.99)],
    }
    colors = ["#6a9fd4", "#1f5fa8", "#f0a35e", "#c0392b"]
    width = 0.2
    for i, ((label, values), color) in enumerate(zip(series.items(), colors, strict=True)):
        xs = [x + (i - 1.5) * width for x in range(len(names))]
        right.bar(xs, [v * 1000 for v in values], width, label=label, color=color)
    right.set_yscale("log")
    right.set_xticks(range(len(names)), names)
    right.set_xlabel("readers, by number of followees")
    right.set_ylabel("ms per page of 25 (log scale)")
    right.set_title(f"Home timeline, {r.cfg.users:,} users")
    right.legend(fontsize=8)
    figure.suptitle(f"bench/feeds.py ({r.cfg.mode}), {r.machine.date}, {r.machine.cores} cores")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# -- main -------------------------------------------------------------------------


class Cleanup:
    """What this run created, deleted at the end whatever happens."""

    def __init__(self, redis_url: str, pg: dict[str, Any]) -> None:
        self.redis_url = redis_url
        self.pg = pg
        self.prefixes: list[str] = []
        self.schema: str | None = None

    def __call__(self) -> None:
        # A fresh connection: the run's own may be stopped halfway through a reply.
        client = redis.Redis.from_url(self.redis_url)
        for prefix in self.prefixes:
            try:
                deleted = delete_prefix(client, prefix)
                if deleted:
                    log(f"cleanup: {deleted:,} Redis keys under {prefix}")
            except redis.RedisError as error:
                log(f"cleanup: could not delete {prefix}*: {error}")
        client.close()
        if self.schema:
            try:
                with psycopg.connect(**self.pg, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
                log(f"cleanup: dropped schema {self.schema}")
            except psycopg.Error as error:
                log(f"cleanup: could not drop schema {self.schema}: {error}")


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _default_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@dataclass
class Phases:
    times: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return work()
        finally:
            self.times[name] = time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(argv)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    run = f"bench-feeds-{os.getpid()}"
    schema = f"bench_feeds_{os.getpid()}"
    client = redis.Redis.from_url(cfg.redis_url)
    client.ping()
    cleanup = Cleanup(cfg.redis_url, cfg.pg)
    cleanup.prefixes = [f"{run}-"]
    phases = Phases()
    try:
        with psycopg.connect(**cfg.pg) as conn, tempfile.TemporaryDirectory() as scratch:
            machine = Machine.describe(client, conn)
            cleanup.schema = schema
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.commit()
            fanout = phases.run(
                "fan-out", lambda: bench_fanout(client, cfg, f"{run}-fan", f"{run}-zadd:")
            )
            celebrity = phases.run(
                "celebrity", lambda: bench_celebrity(client, cfg, f"{run}-celeb")
            )
            workload = generate_workload(cfg, Path(scratch))
            log(f"network: reading {workload}")
            network: Network = phases.run("workload", lambda: read_network(workload))
            datastore = PostgresDatastore(
                cfg.pg["dbname"], cfg.pg["host"], cfg.pg["port"], cfg.pg["user"],
                cfg.pg["password"], schema=schema,
            )  # fmt: skip
            catalog = PostgresCatalog(datastore)
            catalog.create_table()
            catalog.close()
            namespace = f"{run}-net"
            readers = sample_readers(cfg, network)
            builders = (
                list(range(len(network.names)))
                if cfg.all_timelines
                else sorted({u for _, u in readers})
            )
            load = phases.run(
                "loading",
                lambda: load_network(client, conn, cfg, namespace, schema, network, builders),
            )
            reads = phases.run(
                "reads", lambda: bench_reads(cfg, namespace, schema, network, client, readers)
            )
            log("reads: the celebrities turn hybrid, then the same reads again")
            made = make_celebrities_hybrid(client, namespace, network)
            log(f"reads: {made} feeds are hybrid")
            again = sample_readers(cfg, network)  # the same readers, fresh tallies
            hybrid_reads = phases.run(
                "hybrid reads",
                lambda: bench_reads(cfg, namespace, schema, network, client, again),
            )
            cap = plain_provider(client, namespace).timeline_cap
            memory = phases.run("memory", lambda: bench_memory(client, namespace, network, cap))
        results = Results(
            cfg, machine, fanout, celebrity, network, load, reads, hybrid_reads, memory,
            time.perf_counter() - started, phases.times,
        )  # fmt: skip
        plot_path = PLOTS / f"feeds-{cfg.mode}.png"
        section = render(results, plot_path)
        if cfg.write_doc:
            plot(results, plot_path)
            write_section(f"bench/feeds.py {cfg.mode}", section)
            log(f"wrote {DOC} and {plot_path}")
        else:
            scratch_plot = Path(tempfile.gettempdir()) / f"{run}-{cfg.mode}.png"
            plot(results, scratch_plot)
            log(f"plot in {scratch_plot}")
        print(section)
    finally:
        cleanup()
        log(f"done in {(time.perf_counter() - started) / 60:.1f} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

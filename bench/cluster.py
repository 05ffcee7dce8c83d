"""Benchmark: Chirp's Redis feeds on a Redis Cluster, through Chirp's cluster
client beside redis-py's own, and what a look at the position costs there.

Starts a throwaway cluster of three masters (``redis-server`` on PATH, as the
tests do; or ``--cluster-url`` names a node of one you run) and measures, in
one run, alternating between the two clients round by round:

- fan-out: an author with ``--followers`` followers posts; timeline entries
  written per second, and the ``COMMAND GETKEYS`` calls the nodes served
  (redis-py's cluster pipeline asks the default node for the keys of every
  script call it queues; ``adapters.redis.cluster.cluster_client`` reads them
  from the call);
- a follower's feed page (``RedisFeedProvider.read``, 25 items): p50 and p99;
- a look at the projector's position (``RedisTrackingRecorder.max_tracking_id``):
  one that checks every primary's replication (see
  ``adapters/redis/shard_history.py``), one between two checks (as wired, a
  process checks at most once a second), and a bare ``GET`` of the key.

Run on demand, not in the test suite (about 20 seconds):

    .venv/bin/python bench/cluster.py

Writes its section of ``docs/benchmarks.md`` (``--no-doc`` to only print it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from eventsourcing.persistence import Tracking
from redis.cluster import RedisCluster

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doc_sections import write_section  # noqa: E402

from adapters.redis import shard_history  # noqa: E402
from adapters.redis.cluster import cluster_client  # noqa: E402
from adapters.redis.feeds import RedisFeedProvider  # noqa: E402
from adapters.redis.tracking import RedisTrackingRecorder  # noqa: E402
from application.feeds import Activity, FeedId, Follow  # noqa: E402
from tests.redis_cluster import start_cluster  # noqa: E402

BASE = datetime(2026, 1, 1)  # naive UTC, as activities carry it


@dataclass
class Side:
    """What one client measured, over every round."""

    name: str
    fanout_seconds: list[float] = field(default_factory=list)
    entries: int = 0
    getkeys: int = 0
    reads: list[float] = field(default_factory=list)


@contextmanager
def a_cluster(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("bench: redis-server is not on PATH (or pass --cluster-url)")
    cluster = start_cluster(server)
    try:
        yield cluster.url
    finally:
        cluster.stop()


def primaries(client: RedisCluster) -> list[redis.Redis]:
    nodes = client.get_primaries()  # type: ignore[no-untyped-call]
    return [client.get_redis_connection(node) for node in nodes]


def getkeys_calls(nodes: list[redis.Redis]) -> int:
    stats = [node.info("commandstats") for node in nodes]
    return sum(int(s.get("cmdstat_command|getkeys", {}).get("calls", 0)) for s in stats)


def post(author: FeedId, n: int) -> Activity:
    foreign_id = f"post:{author.id}:{n}"
    moment = BASE + timedelta(seconds=n)
    return Activity(author.id, "tweet", foreign_id, foreign_id, moment, extra={"text": "hi"})


def measure_round(side: Side, client: RedisCluster, followers: int, posts: int, reads: int) -> None:
    """One round: a fresh namespace, ``followers`` follows, ``posts`` posts, ``reads`` pages."""
    provider = RedisFeedProvider(client, f"bench-cluster-{uuid.uuid4().hex[:8]}")
    author = FeedId("user", "author")
    timelines = [FeedId("timeline", f"reader{n}") for n in range(followers)]
    try:
        provider.follow_many([Follow(timeline, author) for timeline in timelines])
        nodes = primaries(client)
        before = getkeys_calls(nodes)
        for n in range(posts):
            started = time.perf_counter()
            provider.add_activity(author, post(author, n))
            side.fanout_seconds.append(time.perf_counter() - started)
        side.entries += followers * posts
        side.getkeys += getkeys_calls(nodes) - before
        for n in range(reads):
            started = time.perf_counter()
            page = provider.read(timelines[n % followers], limit=25)
            side.reads.append(time.perf_counter() - started)
            assert len(page) == min(posts, 25)
    finally:
        provider.clear()


@dataclass
class Looks:
    """Times of looks at the projector's position, taken in turn."""

    checking: list[float] = field(default_factory=list)  # each one checks the primaries
    between_checks: list[float] = field(default_factory=list)  # as wired: one check a second
    bare_get: list[float] = field(default_factory=list)


def position_looks(client: RedisCluster, looks: int) -> Looks:
    """``max_tracking_id`` checking the primaries at every look, then as
    wired (between two checks), then a bare GET of the key, in turn."""
    namespace = f"bench-cluster-{uuid.uuid4().hex[:8]}"
    checking = RedisTrackingRecorder(client, namespace)
    wired = RedisTrackingRecorder(client, namespace)
    checking.insert_tracking(Tracking("chirp", 1))
    key = f"{namespace}:tracking:chirp"
    times = Looks()
    interval = shard_history.CHECK_INTERVAL_SECONDS
    try:
        wired.max_tracking_id("chirp")  # its first look checks
        for _ in range(looks):
            shard_history.CHECK_INTERVAL_SECONDS = 0.0
            started = time.perf_counter()
            checking.max_tracking_id("chirp")
            times.checking.append(time.perf_counter() - started)
            shard_history.CHECK_INTERVAL_SECONDS = interval
            started = time.perf_counter()
            wired.max_tracking_id("chirp")
            times.between_checks.append(time.perf_counter() - started)
            started = time.perf_counter()
            client.get(key)
            times.bare_get.append(time.perf_counter() - started)
    finally:
        shard_history.CHECK_INTERVAL_SECONDS = interval
        RedisFeedProvider(client, namespace).clear()
    return times


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def report(
    sides: list[Side],
    looks: Looks,
    options: argparse.Namespace,
    command: str,
) -> str:
    chirp, plain = sides
    rate = {s.name: s.entries / sum(s.fanout_seconds) for s in sides}
    lines = [
        "## Feeds on Redis Cluster: Chirp's cluster client beside redis-py's",
        "",
        f"`{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: a cluster of three masters "
        "(no replicas) on this machine; "
        f"{options.rounds} round(s) per client, alternating, each a fresh namespace where an "
        f"author with {options.followers:,} followers posts {options.posts} times, then "
        f"{options.reads} followers' pages are read.",
        "",
        "| client | fan-out entries/s | `COMMAND GETKEYS` served per post | page p50 | page p99 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for side in sides:
        posts = len(side.fanout_seconds)
        lines.append(
            f"| {side.name} | {rate[side.name]:,.0f} | {side.getkeys / posts:,.0f} | "
            f"{ms(statistics.median(side.reads))} | {ms(percentile(side.reads, 99))} |"
        )
    lines += [
        "",
        f"Fan-out through Chirp's client: **{rate[chirp.name] / rate[plain.name]:.1f} x** the "
        "rate through redis-py's. A fan-out on a cluster sends one script call per slot holding "
        "a follower's timeline, pipelined per node; redis-py's cluster pipeline first asks the "
        "node the URL names for each call's keys, one round trip each, while Chirp's client "
        "(`adapters.redis.cluster.cluster_client`) reads them from the call. A page is one "
        "script call outside a pipeline, routed alike by both.",
        "",
        f"A look at the projector's position ({len(looks.checking)} of each kind, in turn): "
        f"checking the primaries p50 {ms(statistics.median(looks.checking))}, p99 "
        f"{ms(percentile(looks.checking, 99))}; between two checks, as wired (a check at most "
        f"every {shard_history.CHECK_INTERVAL_SECONDS:g} s per process) p50 "
        f"{ms(statistics.median(looks.between_checks))}, p99 "
        f"{ms(percentile(looks.between_checks, 99))}; a bare `GET` of the key p50 "
        f"{ms(statistics.median(looks.bare_get))}, p99 {ms(percentile(looks.bare_get, 99))}. "
        "A check asks every primary for its replication (`CLUSTER NODES`, then `INFO "
        "replication` of each; `ShardHistory`); between checks a look is one `GET` of the "
        "position.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster-url", help="a node of a running cluster (default: start one)")
    parser.add_argument("--followers", type=int, default=5_000)
    parser.add_argument("--posts", type=int, default=3)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--looks", type=int, default=500)
    parser.add_argument("--no-doc", action="store_true", help="print the section only")
    options = parser.parse_args()
    command = ".venv/bin/python bench/cluster.py " + " ".join(sys.argv[1:])
    with a_cluster(options.cluster_url) as url:
        clients: list[tuple[Side, Callable[[], RedisCluster]]] = [
            (Side("Chirp's (`cluster_client`)"), lambda: cluster_client(url)),
            (Side("redis-py's (`RedisCluster.from_url`)"), lambda: RedisCluster.from_url(url)),
        ]
        for round_number in range(options.rounds):
            for side, make in clients:
                client = make()
                try:
                    measure_round(side, client, options.followers, options.posts, options.reads)
                finally:
                    client.close()
            print(f"round {round_number + 1} of {options.rounds} done", file=sys.stderr)
        client = cluster_client(url)
        try:
            looks = position_looks(client, options.looks)
        finally:
            client.close()
    section = report([side for side, _ in clients], looks, options, command.strip())
    print(section)
    if not options.no_doc:
        write_section("bench/cluster.py", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: a command's latency and round trips beside a plain INSERT, and read-your-writes.

Side by side in one run, on the local PostgreSQL (a fresh schema, dropped
afterwards) and Redis (a fresh ``CHIRP_REDIS_NAMESPACE``, deleted afterwards),
Chirp wired as the web wires it (``chirp.bootstrap.build_chirp``: PostgreSQL
events and catalog, Redis feeds, the projections in this process's
background threads, which hold the leases):

1. latency, in rounds that take the four operations in turn (the order
   rotates): a Django ``Tweet.objects.create`` (one INSERT in autocommit on a
   ``bench_tweet`` table in the same schema), the same INSERT through psycopg
   (prepared, autocommit: the floor), Chirp's post and Chirp's follow. After
   each command its author reads (read-your-writes): the post must be on the
   author's home timeline, the follow must show in the follower's count; the
   read's wait for the projections is timed apart. The projections finish
   before the next operation, so each operation starts on a quiet process,
   as a person's next request does; then posts back to back, the
   projections working meanwhile;
2. read-your-writes from another process: posts by a second Chirp, which
   holds no lease, read there (its read waits for the holder's poll);
3. round trips per command, counted on the wire by a proxy in front of
   PostgreSQL and Redis (``bench/wire.py``: one round trip per turn of each
   connection's conversation, named by its first statement), through a Chirp
   that holds no lease: commands only. Then the projections' round trips per
   post, through a Chirp that holds the leases.

Run on demand, not in the test suite::

    .venv/bin/python bench/commands.py            # about 2 minutes
    .venv/bin/python bench/commands.py --no-doc   # print, leave docs/benchmarks.md alone

Writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis
from doc_sections import write_section
from psycopg import sql
from wire import CountingProxy

from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from domain.tweet import Tweet

SECTION = "bench/commands.py"
POLL_SECONDS = 0.25  # as the web runs the projections (web/runtime.py)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


@dataclass
class Config:
    rounds: int
    users: int
    follows: int
    counted: int
    doc: bool
    pg: dict[str, Any]
    redis_url: str

    @classmethod
    def parse(cls, argv: Sequence[str] | None) -> Config:
        args = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
        args.add_argument("--rounds", type=int, default=2000, help="timed rounds (default 2000)")
        args.add_argument("--users", type=int, default=200)
        args.add_argument("--follows", type=int, default=20, help="followees per user at start")
        args.add_argument("--counted", type=int, default=50, help="commands counted on the wire")
        args.add_argument("--no-doc", action="store_true", help="print only")

        options = args.parse_args(argv)

        pg = {
            "host": os.environ.get("POSTGRES_HOST", "127.0.0.1"),
            "port": int(os.environ.get("POSTGRES_PORT", "5432")),
            "dbname": os.environ.get("POSTGRES_DBNAME", "test"),
            "user": os.environ.get("POSTGRES_USER", "postgres"),
            "password": os.environ.get("POSTGRES_PASSWORD", ""),
        }
        return cls(
            options.rounds,
            options.users,
            options.follows,
            options.counted,
            not options.no_doc,
            pg,
            os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        )

    def settings(
        self, schema: str, namespace: str, pg_port: int = 0, redis_port: int = 0
    ) -> Settings:
        """Chirp's settings; with ports, through the counting proxies."""
        host = "127.0.0.1" if pg_port else self.pg["host"]
        url = (
            f"postgresql://{self.pg['user']}:{self.pg['password']}@{host}:"
            f"{pg_port or self.pg['port']}/{self.pg['dbname']}"
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0" if redis_port else self.redis_url
        return Settings(
            database_url=url,
            postgres_schema=schema,
            feed_provider="redis",
            redis_url=redis_url,
            redis_namespace=namespace,
        )


# -- the baselines ---------------------------------------------------------------


def django_baseline(cfg: Config, schema: str, counted_port: int) -> DjangoBaseline:
    """``Tweet.objects.create`` on a ``bench_tweet`` table in ``schema``, on
    the database and (``counted``) through the counting proxy."""
    import django
    from django.conf import settings
    from django.db import connection, models

    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": cfg.pg["dbname"],
        "HOST": cfg.pg["host"],
        "PORT": cfg.pg["port"],
        "USER": cfg.pg["user"],
        "PASSWORD": cfg.pg["password"],
        "OPTIONS": {"options": f"-c search_path={schema}"},
        "CONN_MAX_AGE": None,
    }
    settings.configure(
        DATABASES={
            "default": database,
            "counted": {**database, "HOST": "127.0.0.1", "PORT": counted_port},
        },
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()

    class Tweet(models.Model):
        author = models.CharField(max_length=15)
        text = models.CharField(max_length=1000)
        created_at = models.DateTimeField()

        class Meta:
            app_label = "bench"
            db_table = "bench_tweet"

    with connection.schema_editor() as editor:
        editor.create_model(Tweet)
    # The stubs' plugin knows no models outside web.settings' apps.
    objects = Tweet.objects  # type: ignore[attr-defined]

    def create(author: str, text: str) -> object:
        return objects.create(author=author, text=text, created_at=datetime.now(UTC))

    def create_counted(author: str, text: str) -> object:
        return objects.using("counted").create(
            author=author, text=text, created_at=datetime.now(UTC)
        )

    return DjangoBaseline(create, create_counted)


@dataclass
class DjangoBaseline:
    create: Callable[[str, str], object]
    create_counted: Callable[[str, str], object]


def psycopg_baseline(conn: psycopg.Connection[Any], schema: str) -> Callable[[str, str], object]:
    """The same INSERT, prepared, in autocommit."""
    statement = sql.SQL(
        "INSERT INTO {} (author, text, created_at) VALUES (%s, %s, %s) RETURNING id"
    ).format(sql.Identifier(schema, "bench_tweet"))

    def insert(author: str, text: str) -> object:
        return conn.execute(statement, (author, text, datetime.now(UTC)), prepare=True).fetchone()

    return insert


# -- the network ---------------------------------------------------------------------


@dataclass
class Network:
    names: list[str]
    following: dict[str, set[str]]
    rng: random.Random = field(default_factory=lambda: random.Random(1))

    def text(self, author: str) -> str:
        other = self.rng.choice(self.names)
        tag = self.rng.choice(["chirp", "python", "django", "bench"])
        return (
            f"Measuring the write path today with @{other}, one post at a time #{tag} "
            f"{self.rng.randrange(10**6)}"
        )

    def new_pair(self) -> tuple[str, str]:
        while True:
            follower, followee = self.rng.sample(self.names, 2)
            if followee not in self.following[follower]:
                self.following[follower].add(followee)
                return follower, followee


def build_network(chirp: Chirp, cfg: Config) -> Network:
    names = [f"user{n:04d}" for n in range(cfg.users)]
    network = Network(names, {name: set() for name in names})
    for name in names:
        chirp.register(name)
    for _ in range(cfg.users * cfg.follows):
        follower, followee = network.new_pair()
        chirp.follow(follower, followee)
    return network


# -- 1. latency and read-your-writes --------------------------------------------------


@dataclass
class Latency:
    times: dict[str, list[float]] = field(default_factory=dict)
    waits: dict[str, list[float]] = field(default_factory=dict)
    reads: dict[str, list[float]] = field(default_factory=dict)
    unseen: Counter[str] = field(default_factory=Counter)
    back_to_back: list[float] = field(default_factory=list)
    catch_up: float = 0.0
    other_process_waits: list[float] = field(default_factory=list)
    other_process_unseen: int = 0

    def add(self, kind: str, seconds: float) -> None:
        self.times.setdefault(kind, []).append(seconds)


def bench_latency(
    cfg: Config,
    chirp: Chirp,
    network: Network,
    baselines: dict[str, Callable[[str, str], object]],
) -> Latency:
    result = Latency()
    following_count = {name: len(network.following[name]) for name in network.names}

    def post(timed: bool) -> None:
        author = network.rng.choice(network.names)
        text = network.text(author)
        started = time.perf_counter()
        post_id = chirp.post(author, text, key=uuid.uuid4())
        done = time.perf_counter()
        queries = chirp.queries  # waits for the projections to reach the post
        waited = time.perf_counter()
        page = queries.home_timeline(author)
        read = time.perf_counter()
        if timed:
            result.add("Chirp post", done - started)
            result.waits.setdefault("post", []).append(waited - done)
            result.reads.setdefault("post", []).append(read - waited)
            if all(item.post_id != post_id for item in page.items):
                result.unseen["post"] += 1

    def follow(timed: bool) -> None:
        follower, followee = network.new_pair()
        started = time.perf_counter()
        chirp.follow(follower, followee)
        done = time.perf_counter()
        queries = chirp.queries
        waited = time.perf_counter()
        count = queries.user(follower).following_count
        read = time.perf_counter()
        following_count[follower] += 1
        if timed:
            result.add("Chirp follow", done - started)
            result.waits.setdefault("follow", []).append(waited - done)
            result.reads.setdefault("follow", []).append(read - waited)
            if count != following_count[follower]:
                result.unseen["follow"] += 1

    def baseline(name: str) -> Callable[[bool], None]:
        insert = baselines[name]

        def run(timed: bool) -> None:
            author = network.rng.choice(network.names)
            text = network.text(author)
            started = time.perf_counter()
            insert(author, text)
            if timed:
                result.add(name, time.perf_counter() - started)

        return run

    operations = [baseline(name) for name in baselines] + [post, follow]
    for number in range(cfg.rounds // 10 + cfg.rounds):
        timed = number >= cfg.rounds // 10  # a tenth more, untimed, to warm up
        shift = number % len(operations)
        for operation in operations[shift:] + operations[:shift]:
            operation(timed)
        if number % 500 == 0:
            log(f"latency: round {number}")

    log("latency: posts back to back")
    for _ in range(cfg.rounds // 4):
        author = network.rng.choice(network.names)
        started = time.perf_counter()
        chirp.post(author, network.text(author), key=uuid.uuid4())
        result.back_to_back.append(time.perf_counter() - started)
    started = time.perf_counter()
    chirp.queries  # noqa: B018 - waits until the projections have caught up
    result.catch_up = time.perf_counter() - started
    return result


def bench_other_process(cfg: Config, other: Chirp, network: Network, result: Latency) -> None:
    """Posts by a Chirp without the leases, read there: the wait is for the
    holder's next poll (``POLL_SECONDS``)."""
    for _ in range(max(20, cfg.rounds // 20)):
        author = network.rng.choice(network.names)
        post_id = other.post(author, network.text(author), key=uuid.uuid4())
        done = time.perf_counter()
        page = other.queries.home_timeline(author)
        result.other_process_waits.append(time.perf_counter() - done)
        if all(item.post_id != post_id for item in page.items):
            result.other_process_unseen += 1


def bench_post_parts(cfg: Config, chirp: Chirp, network: Network) -> dict[str, float]:
    """p50 of each part of a post, timed apart in turns: the text's rule and
    entities (``Tweet.post``), the event to a stored record (the mapper), the
    insert, and the whole command (with the mentions' names, cached)."""
    app = chirp.commands
    times: dict[str, list[float]] = {}

    def timed(kind: str, started: float) -> None:
        times.setdefault(kind, []).append(time.perf_counter() - started)

    for _ in range(cfg.rounds // 2):
        author = network.rng.choice(network.names)
        text = network.text(author)
        known = {name.lower(): name for name in network.names[:1]}
        started = time.perf_counter()
        tweet = Tweet.post(author, text, known)
        timed(
            "`Tweet.post`: the text's rule (twitter-text's weighted length), its entities", started
        )
        events = tweet.collect_events()
        started = time.perf_counter()
        stored = app.mapper.to_stored_event(events[0])
        timed("the mapper: the event as JSON", started)
        started = time.perf_counter()
        app.recorder.insert_events([stored])
        timed("the insert (one round trip)", started)
        started, cpu = time.perf_counter(), time.thread_time()
        app.post(author, text, key=uuid.uuid4())
        timed("the whole command (`ChirpApplication.post`)", started)
        times.setdefault("of which CPU (this thread's)", []).append(time.thread_time() - cpu)
        chirp.read_after(app.last_saved_position())
        chirp.queries  # noqa: B018 - projected before the next turn
    return {kind: pct(values, 0.5) for kind, values in times.items()}


# -- 2. round trips -----------------------------------------------------------------


@dataclass
class RoundTrips:
    per_command: dict[str, list[Counter[str]]] = field(default_factory=dict)
    projection: list[Counter[str]] = field(default_factory=list)

    def add(self, kind: str, turns: list[tuple[int, str]]) -> None:
        self.per_command.setdefault(kind, []).append(Counter(name for _, name in turns))


@contextmanager
def counting(proxies: Sequence[CountingProxy]) -> Iterator[list[tuple[int, str]]]:
    """The turns of every proxy while the block runs."""
    turns: list[tuple[int, str]] = []
    for proxy in proxies:
        proxy.reset()
    yield turns
    for proxy in proxies:
        turns.extend((proxy.port, f"{proxy.protocol}: {name}") for _, name in proxy.reset())


def bench_round_trips(
    cfg: Config,
    counted: Chirp,
    network: Network,
    proxies: Sequence[CountingProxy],
    schema: str,
    django: DjangoBaseline,
) -> RoundTrips:
    result = RoundTrips()
    # The baselines, as the counter's check: one round trip each.
    with psycopg.connect(**{**cfg.pg, "host": "127.0.0.1", "port": proxies[0].port}) as conn:
        conn.autocommit = True
        inserts = {
            "Django Tweet.objects.create": django.create_counted,
            "psycopg INSERT": psycopg_baseline(conn, schema),
        }
        for kind, insert in inserts.items():
            for number in range(cfg.counted + 1):
                with counting(proxies) as turns:
                    insert("someone", "a plain row")
                if number:  # the first one connects, or prepares the statement
                    result.add(kind, turns)
    unused = list(network.names)
    network.rng.shuffle(unused)
    cold_authors, cold_followers = unused[:20], unused[20:40]
    warm = unused[40:60]
    for _ in range(2):  # their names and aggregates cached, statements prepared
        for name in warm:
            counted.post(name, network.text(name), key=uuid.uuid4())
            counted.follow(*new_pair_from(network, name))
    for name in cold_authors:
        with counting(proxies) as turns:
            counted.post(name, network.text(name), key=uuid.uuid4())
        result.add("post, its author's first command in this process", turns)
    for name in cold_followers:
        with counting(proxies) as turns:
            counted.follow(*new_pair_from(network, name))
        result.add("follow, the follower's first command in this process", turns)
    for number in range(cfg.counted):
        name = warm[number % len(warm)]
        with counting(proxies) as turns:
            counted.post(name, network.text(name), key=uuid.uuid4())
        result.add("post", turns)
        with counting(proxies) as turns:
            counted.follow(*new_pair_from(network, name))
        result.add("follow", turns)
    return result


def new_pair_from(network: Network, follower: str) -> tuple[str, str]:
    choices = [n for n in network.names if n != follower and n not in network.following[follower]]
    followee = network.rng.choice(choices)
    network.following[follower].add(followee)
    return follower, followee


def bench_projection_round_trips(
    cfg: Config, counted: Chirp, network: Network, proxies: Sequence[CountingProxy]
) -> list[Counter[str]]:
    """A post and its projection, read by its author, through a Chirp that
    holds the leases (its background threads project)."""
    windows: list[Counter[str]] = []
    for number in range(cfg.counted + 10):
        author = network.rng.choice(network.names)
        with counting(proxies) as turns:
            counted.post(author, network.text(author), key=uuid.uuid4())
            counted.queries  # noqa: B018 - waits for the projections
        if number >= 10:
            windows.append(Counter(name for _, name in turns))
    return windows


# -- report ----------------------------------------------------------------------------


def mean_tally(tallies: list[Counter[str]]) -> list[tuple[str, float]]:
    total: Counter[str] = Counter()
    for tally in tallies:
        total.update(tally)
    return sorted(
        ((name, count / len(tallies)) for name, count in total.items()), key=lambda x: -x[1]
    )


def describe_machine(cfg: Config) -> str:
    with psycopg.connect(**cfg.pg) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    pg_version = row[0] if row else "?"
    redis_version = redis.Redis.from_url(cfg.redis_url).info("server")["redis_version"]
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"PostgreSQL {pg_version}, Redis {redis_version}, all on this machine; load average "
        f"{os.getloadavg()[0]:.1f} at the start (other engineers' work shares the machine)"
    )


def report(
    cfg: Config, machine: str, latency: Latency, parts: dict[str, float], trips: RoundTrips,
    projection: list[Counter[str]], minutes: float,
) -> str:  # fmt: skip
    times = latency.times
    django = pct(times["Django Tweet.objects.create"], 0.5)
    django99 = pct(times["Django Tweet.objects.create"], 0.99)
    lines = [
        "## Commands: latency and round trips beside a plain INSERT",
        "",
        "    .venv/bin/python bench/commands.py",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine}. The run took {minutes:.1f} "
        f"minutes. {cfg.users} users, each following {cfg.follows} at the start; Chirp as "
        "`build_chirp` wires it for PostgreSQL and Redis feeds, its projections in this "
        "process's background threads (holding the leases).",
        "",
        "### Goals",
        "",
        "| goal | measured | |",
        "| --- | --- | --- |",
    ]
    for kind in ("Chirp post", "Chirp follow"):
        p50, p99 = pct(times[kind], 0.5), pct(times[kind], 0.99)
        for label, value, base, limit in (
            ("p50", p50, django, 2.0),
            ("p99", p99, django99, 3.0),
        ):
            ratio = value / base
            met = "met" if ratio <= limit else "**missed**"
            lines.append(
                f"| {kind.split()[1]} {label} <= {limit:g} x Django's create | {ratio:.2f} x "
                f"({ms(value)} vs {ms(base)}) | {met} |"
            )
    unseen = sum(latency.unseen.values()) + latency.other_process_unseen
    lines += [
        f"| the author sees the post on the next read | {unseen} misses in "
        f"{len(latency.waits['post']) + len(latency.other_process_waits)} posts and "
        f"{len(latency.waits['follow'])} follows | {'met' if unseen == 0 else '**missed**'} |",
        "",
        f"### 1. Latency ({cfg.rounds} rounds, after {cfg.rounds // 10} untimed)",
        "",
        "Each round runs the four operations in turn, the order rotating. Django's "
        "create is one `INSERT ... RETURNING id` in autocommit on `bench_tweet "
        "(id, author, text, created_at)` in the same schema; psycopg's is the same "
        "statement, prepared, on one connection in autocommit. A Chirp command is "
        "timed from the call to its return (its event stored); the author's read "
        "after it (its wait for the projections, then the page) is timed apart.",
        "",
        "| operation | p50 | p99 | mean | x Django p50 | x Django p99 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, values in times.items():
        p50, p99 = pct(values, 0.5), pct(values, 0.99)
        lines.append(
            f"| {kind} | {ms(p50)} | {ms(p99)} | {ms(sum(values) / len(values))} | "
            f"{p50 / django:.2f} | {p99 / django99:.2f} |"
        )
    b2b = latency.back_to_back
    lines += [
        f"| Chirp post, back to back ({len(b2b)}; the projections working meanwhile) | "
        f"{ms(pct(b2b, 0.5))} | {ms(pct(b2b, 0.99))} | {ms(sum(b2b) / len(b2b))} | "
        f"{pct(b2b, 0.5) / django:.2f} | {pct(b2b, 0.99) / django99:.2f} |",
        "",
        f"After the back-to-back posts the projections had caught up {latency.catch_up:.2f} s "
        "after the last one returned.",
        "",
        "Read-your-writes (the author's next read):",
        "",
        "| read | wait for the projections p50 | p99 | the page p50 | p99 | not shown |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, what in (
        ("post", "the post on the home timeline"),
        ("follow", "following count"),
    ):
        waits, reads = latency.waits[kind], latency.reads[kind]
        lines.append(
            f"| after a {kind}, same process ({what}) | {ms(pct(waits, 0.5))} | "
            f"{ms(pct(waits, 0.99))} | {ms(pct(reads, 0.5))} | {ms(pct(reads, 0.99))} | "
            f"{latency.unseen[kind]} |"
        )
    other = latency.other_process_waits
    lines += [
        f"| after a post by a process without the leases, read there (wait and page) | "
        f"{ms(pct(other, 0.5))} | {ms(pct(other, 0.99))} | - | - | "
        f"{latency.other_process_unseen} |",
        "",
        "A process without the lease is not woken by another's command: its read waits "
        f"for the holder's next poll (every {POLL_SECONDS} s), then sees the post.",
        "",
        "Where a post's time goes (p50 of each part, timed apart in turns, "
        f"{cfg.rounds // 2} times; the projections quiet):",
        "",
        "| part | p50 |",
        "| --- | --- |",
        *(f"| {kind} | {ms(value)} |" for kind, value in parts.items()),
        "",
        "### 2. Round trips per command",
        "",
        "Counted on the wire (`bench/wire.py`): PostgreSQL and Redis reached through a "
        "proxy that counts each turn of each connection (the client sends, the server "
        "answers), named by the first statement the client sent in it; a prepared "
        "statement is named by the text it was prepared with. Through a second Chirp on "
        "the proxies, which holds no lease (the first projects), so only the commands "
        "talk. Mean per command:",
        "",
        "| command | round trips | where each goes |",
        "| --- | --- | --- |",
    ]
    for kind, tallies in trips.per_command.items():
        mean = mean_tally(tallies)
        total = sum(count for _, count in mean)
        where = "; ".join(f"{count:g} x `{name}`" for name, count in mean)
        lines.append(f"| {kind} ({len(tallies)}) | **{total:g}** | {where} |")
    lines += [
        "",
        "A warm post is its insert: one call of the function that locks the events table, "
        "inserts and returns the notification id, in autocommit. A name the process has "
        "not looked up yet (the author's, a mention's, a followee's) adds one read of the "
        "user's first event, `SELECT ... WHERE originator_id = $1 ... LIMIT 1`, and is "
        "remembered (the fractions above: mentions and followees of users this process met "
        "for the first time). A warm follow also reads the events the follower's cached "
        "aggregate has not seen yet (`... AND originator_version > $2`: none, unless "
        "another process changed it); a follower not cached yet is read from its snapshot "
        "and the events after it.",
    ]
    mean = mean_tally(projection)
    total = sum(count for _, count in mean)
    where = "; ".join(f"{count:.1f} x `{name}`" for name, count in mean)
    lines += [
        "",
        "The same proxy, through a Chirp that holds the leases: a post, its projection by "
        "the background threads, and the author's read that waits for it, "
        f"{len(projection)} times. Mean per post: **{total:.1f}** round trips: {where}.",
    ]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    cfg = Config.parse(argv)
    started = time.perf_counter()
    run = f"bench_commands_{os.getpid()}"
    namespace = f"bench-commands-{os.getpid()}"
    machine = describe_machine(cfg)
    admin = psycopg.connect(**cfg.pg, autocommit=True)
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(run)))
    chirps: list[Chirp] = []
    redis_at = urlsplit(cfg.redis_url)
    proxies = [
        CountingProxy(cfg.pg["host"], cfg.pg["port"], "postgres"),
        CountingProxy(redis_at.hostname or "127.0.0.1", redis_at.port or 6379, "redis"),
    ]
    try:
        django = django_baseline(cfg, run, proxies[0].port)
        baselines = {
            "Django Tweet.objects.create": django.create,
            "psycopg INSERT": psycopg_baseline(psycopg.connect(**cfg.pg, autocommit=True), run),
        }
        chirp = build_chirp(cfg.settings(run, namespace))
        chirps.append(chirp)
        chirp.sync()
        chirp.start_following(POLL_SECONDS)
        log(f"network: {cfg.users} users, {cfg.follows} follows each")
        network = build_network(chirp, cfg)
        chirp.queries  # noqa: B018 - projected
        latency = bench_latency(cfg, chirp, network, baselines)
        log("the parts of a post")
        parts = bench_post_parts(cfg, chirp, network)
        log("read-your-writes from a process without the leases")
        other = build_chirp(cfg.settings(run, namespace))
        chirps.append(other)
        bench_other_process(cfg, other, network, latency)
        log("round trips")
        counted = build_chirp(cfg.settings(run, namespace, proxies[0].port, proxies[1].port))
        chirps.append(counted)
        trips = bench_round_trips(cfg, counted, network, proxies, run, django)
        log("the projections' round trips: the counted Chirp takes the leases")
        chirp.close()
        other.close()
        counted.start_following(POLL_SECONDS)
        counted.queries  # noqa: B018
        projection = bench_projection_round_trips(cfg, counted, network, proxies)
        section = report(
            cfg, machine, latency, parts, trips, projection, (time.perf_counter() - started) / 60
        )
    finally:
        for instance in chirps:
            try:
                instance.close()
            except Exception as error:  # closed before
                log(f"closing: {error}")
        for proxy in proxies:
            proxy.close()
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(run)))
        client = redis.Redis.from_url(cfg.redis_url)
        for key in client.scan_iter(f"{namespace}*", count=1000):
            client.delete(key)
    print(section)
    if cfg.doc:
        write_section(SECTION, section)
        log("wrote its section of docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: posting from 1, 2, 4 and 8 processes, and the event store's ceiling.

Two measurements on the local PostgreSQL (a fresh schema, dropped afterwards)
and Redis (a fresh namespace, deleted afterwards):

1. scale-out: N processes (N = 1, 2, 4, 8), each building Chirp as a web
   process does (``chirp.bootstrap.build_chirp``, Redis feeds, projections in
   background threads: one process takes each lease and projects), post for
   ``--seconds`` each, one post at a time, as fast as they can. Total posts/s,
   p50/p99 per post, where the machine's CPU went meanwhile (``/proc``: these
   processes, PostgreSQL's, Redis's, the rest), and how long the projections
   took to catch up after the last post;
2. the event store's ceiling: K processes (K = 1, 2, 4, 8) insert events
   through the recorder alone, one event per insert (as a command does),
   with Chirp's recorder (one round trip, eventsourcing's table lock taken
   inside a database function) beside eventsourcing's own (two round trips,
   the lock held across one of them), and Chirp's with ten events per
   insert (commands batched); then ``pgbench`` calling the same insert
   function (a client that costs almost nothing, so what remains is the
   server and the lock) beside the same rows inserted without the lock.

Run on demand, not in the test suite::

    .venv/bin/python bench/write_scale.py            # about 5 minutes
    .venv/bin/python bench/write_scale.py --no-doc   # print only

Writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import multiprocessing
import os
import queue
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import redis
from commands import Config as PgConfig
from commands import describe_machine, log, pct
from doc_sections import write_section
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from chirp.bootstrap import build_chirp, build_commands
from chirp.settings import Settings

SECTION = "bench/write_scale.py"
COUNTS = (1, 2, 4, 8)
POLL_SECONDS = 0.25
READ_EVERY = int(os.environ.get("BENCH_READ_EVERY", "10"))  # one post in ten is read back
# Each web process's event store keeps two connections (a posting thread and
# a projection thread): eight processes stay well inside max_connections.
POOL = {"POSTGRES_POOL_SIZE": "2"}
UPSTREAM_RECORDER = "eventsourcing.postgres:PostgresApplicationRecorder"
STATE = (
    b'{"author":"user0001","text":"Measuring the write path today with @user0002, one post '
    b'at a time #bench 123456","posted_at":"2026-12-01T12:00:00+00:00","entities":[]}'
)


# -- CPU accounting ---------------------------------------------------------------------


TICKS = os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def process_ticks(names: Sequence[str] = (), pids: Sequence[int] = ()) -> int:
    """CPU jiffies used so far by the processes called ``names`` or ``pids``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        if int(entry) in pids or comm in names:
            fields = text[text.rindex(")") + 2 :].split()
            # utime, stime; and cutime, cstime: a backend that exited during
            # the window is counted in its postmaster's children's time.
            total += sum(int(x) for x in fields[11:15])
    return total


@dataclass
class CpuShare:
    """Where the machine's CPU went over a window, in cores."""

    seconds: float
    busy: float
    ours: float
    postgres: float
    redis: float

    @property
    def other(self) -> float:
        return max(0.0, self.busy - self.ours - self.postgres - self.redis)

    def describe(self) -> str:
        return (
            f"{self.busy:.2f} of {os.cpu_count()} cores busy: Python {self.ours:.2f}, "
            f"PostgreSQL {self.postgres:.2f}, Redis {self.redis:.2f}, other {self.other:.2f}"
        )


class CpuWindow:
    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.started = time.perf_counter()
        self.machine = machine_ticks()
        self.ours = process_ticks(pids=self.pids)
        self.postgres = process_ticks(names=["postgres"])
        self.redis = process_ticks(names=["redis-server"])

    def end(self) -> CpuShare:
        seconds = time.perf_counter() - self.started
        busy, total = machine_ticks()
        cores = os.cpu_count() or 1
        busy_cores = (busy - self.machine[0]) / max(1, total - self.machine[1]) * cores

        def cores_of(ticks: int) -> float:
            return ticks / TICKS / seconds

        return CpuShare(
            seconds,
            busy_cores,
            cores_of(process_ticks(pids=self.pids) - self.ours),
            cores_of(process_ticks(names=["postgres"]) - self.postgres),
            cores_of(process_ticks(names=["redis-server"]) - self.redis),
        )


# -- 1. scale-out ------------------------------------------------------------------------


def poster(
    settings: Settings,
    names: list[str],
    seconds: float,
    ready: Barrier,
    stop: Event,
    results: Any,
) -> None:
    """One web process: Chirp as the web builds it, posting for ``seconds``
    in one thread, while another thread reads one post in ``READ_EVERY``
    back as its author would (read-your-writes), without slowing the posts."""
    chirp = build_chirp(settings)
    chirp.sync(timeout=2)
    chirp.start_following(POLL_SECONDS)
    rng = random.Random(os.getpid())
    latencies: list[float] = []
    reads: list[tuple[float, bool]] = []
    to_read: queue.Queue[tuple[str, UUID, int, float] | None] = queue.Queue(maxsize=1)

    def reader() -> None:
        while (written := to_read.get()) is not None:
            author, post_id, position, posted = written
            chirp.read_after(position)  # as the web does with the session's position
            page = chirp.queries.home_timeline(author)
            shown = any(item.post_id == post_id for item in page.items)
            reads.append((time.perf_counter() - posted, shown))

    reading = threading.Thread(target=reader)
    reading.start()
    ready.wait()
    deadline = time.perf_counter() + seconds
    while (now := time.perf_counter()) < deadline:
        author = rng.choice(names)
        text = f"Posting from {os.getpid()} at {now:.6f} #scale @{rng.choice(names)}"
        post_id = chirp.post(author, text, key=uuid.uuid4())
        done = time.perf_counter()
        latencies.append(done - now)
        if len(latencies) % READ_EVERY == 0:
            with contextlib.suppress(queue.Full):  # the reader is still on the last one
                to_read.put_nowait((author, post_id, chirp.commands.last_saved_position(), done))
    results.put(("posts", latencies))
    to_read.put(None)
    reading.join()
    results.put(("reads", reads))
    stop.wait()
    chirp.close()


class SessionWaits:
    """Samples, every 10 ms, what the database's busy sessions wait on
    (``pg_stat_activity``), until stopped."""

    def __init__(self, cfg: PgConfig) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._conn = psycopg.connect(**cfg.pg, autocommit=True)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        query = (
            "SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU') FROM "
            "pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend' "
            "AND pid <> pg_backend_pid() AND datname = current_database()"
        )
        while not self._stop.wait(0.01):
            self.counts.update(row[0] for row in self._conn.execute(query).fetchall())
            self.samples += 1

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        self._conn.close()
        busy = sorted(self.counts.items(), key=lambda item: -item[1])[:4]
        return ", ".join(f"{name} {count / max(self.samples, 1):.2f}" for name, count in busy)


@dataclass
class ScaleRun:
    processes: int
    posts: int
    seconds: float
    latencies: list[float]
    reads: list[tuple[float, bool]]
    cpu: CpuShare
    catch_up: float
    lag_at_end: int
    waits: str

    @property
    def rate(self) -> float:
        return self.posts / self.seconds

    @property
    def per_core(self) -> float:
        """Posts per second per core these processes used."""
        return self.rate / max(self.cpu.ours, 1e-9)


def scale_run(
    cfg: PgConfig, settings: Settings, names: list[str], count: int, seconds: float
) -> ScaleRun:
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(count + 1)
    stop = context.Event()
    results = context.Queue()
    workers = [
        context.Process(target=poster, args=(settings, names, seconds, ready, stop, results))
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    observer = build_chirp(settings)  # holds no lease: reads the projections' positions
    ready.wait()
    window = CpuWindow([w.pid for w in workers if w.pid is not None])
    sessions = SessionWaits(cfg)
    latencies: list[float] = []
    reads: list[tuple[float, bool]] = []
    messages = {"posts": 0, "reads": 0}
    while messages["posts"] < count:  # the window ends when every process has stopped posting
        kind, values = results.get()
        messages[kind] += 1
        (latencies if kind == "posts" else reads).extend(values)
    cpu = window.end()
    ended = time.perf_counter()
    waits = sessions.stop()
    try:
        lag = max(status.lag or 0 for status in observer.projections())
        while any((status.lag or 0) > 0 for status in observer.projections()):
            if time.perf_counter() - ended > 300:
                break
            time.sleep(0.05)
        catch_up = time.perf_counter() - ended
        while messages["reads"] < count:  # each reader's last read
            kind, values = results.get()
            messages[kind] += 1
            reads.extend(values)
    finally:
        observer.close()
        stop.set()
        for worker in workers:
            worker.join()
    return ScaleRun(count, len(latencies), seconds, latencies, reads, cpu, catch_up, lag, waits)


def build_network(settings: Settings, users: int, follows: int) -> list[str]:
    chirp = build_chirp(settings)
    try:
        names = [f"user{n:04d}" for n in range(users)]
        rng = random.Random(1)
        for name in names:
            chirp.register(name)
        for name in names:
            for followee in rng.sample([n for n in names if n != name], follows):
                chirp.follow(name, followee)
        chirp.sync(timeout=300)
    finally:
        chirp.close()
    return names


# -- 2. the event store's ceiling --------------------------------------------------------


def inserter(settings: Settings, batch: int, seconds: float, ready: Barrier, results: Any) -> None:
    recorder = build_commands(settings).recorder
    ready.wait()
    inserted = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        originator = uuid.uuid4()
        events = [
            StoredEvent(originator, version, "chirp:TweetPosted", STATE)
            for version in range(1, batch + 1)
        ]
        recorder.insert_events(events)
        inserted += batch
    results.put(inserted)


def ceiling_run(
    settings: Settings, writers: int, batch: int, seconds: float
) -> tuple[float, CpuShare]:
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(writers + 1)
    results = context.Queue()
    workers = [
        context.Process(target=inserter, args=(settings, batch, seconds, ready, results))
        for _ in range(writers)
    ]
    for worker in workers:
        worker.start()
    ready.wait()
    window = CpuWindow([w.pid for w in workers if w.pid is not None])
    inserted = sum(results.get() for _ in workers)
    cpu = window.end()
    for worker in workers:
        worker.join()
    return inserted / seconds, cpu


def pgbench(cfg: PgConfig, script: str, clients: int, seconds: float) -> tuple[float, CpuShare]:
    """Transactions per second of ``pgbench`` running ``script`` with ``clients``."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "script.sql"
        path.write_text(script + "\n", encoding="utf-8")
        command = [
            "pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(int(seconds)), "-f", str(path),
            "-h", cfg.pg["host"], "-p", str(cfg.pg["port"]), "-U", cfg.pg["user"], cfg.pg["dbname"],
        ]  # fmt: skip
        window = CpuWindow([])
        done = subprocess.run(
            command, capture_output=True, text=True, check=False,
            env={**os.environ, "PGPASSWORD": cfg.pg["password"]},
        )  # fmt: skip
        cpu = window.end()
    found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    if found is None:
        raise RuntimeError(f"pgbench said: {done.stdout}\n{done.stderr}")
    return float(found[1]), cpu


# -- report ----------------------------------------------------------------------------


@dataclass
class Ceiling:
    rows: dict[str, dict[int, tuple[float, CpuShare]]] = field(default_factory=dict)

    def add(self, kind: str, writers: int, rate: float, cpu: CpuShare) -> None:
        self.rows.setdefault(kind, {})[writers] = (rate, cpu)


def report(
    cfg: PgConfig, machine: str, options: argparse.Namespace, runs: list[ScaleRun],
    ceiling: Ceiling, minutes: float,
) -> str:  # fmt: skip
    lines = [
        "## Posting from many processes, and the event store's ceiling",
        "",
        "    .venv/bin/python bench/write_scale.py",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine}. The run took {minutes:.1f} minutes.",
        "",
        f"### 1. Posting from 1 to 8 processes ({options.seconds:g} s each, twice: 1, 2, 4, "
        "8 processes, then 8, 4, 2, 1)",
        "",
        f"{options.users} users, each following {options.follows}. Each process builds Chirp "
        "as a web process does (`build_chirp`: PostgreSQL events and catalog, Redis feeds, "
        "projections in background threads; one process holds each lease and projects for "
        "all), with an event store pool of 2 connections (`POSTGRES_POOL_SIZE=2`), and "
        "posts one post at a time as fast as it can. CPU is measured over the window from "
        "`/proc` (cores busy on the whole machine, and the share of these processes, of "
        "PostgreSQL's and of Redis's; other engineers' work is the rest).",
        "",
        "| processes | posts/s | x 1 process (mean) | p50 | p99 | CPU | posts/s per core "
        "of these processes | PostgreSQL's busy sessions, waiting on (mean) "
        "| projections behind at the end | then caught up in |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ones = [run.rate for run in runs if run.processes == 1]
    base = sum(ones) / len(ones) if ones else 1.0
    for run in sorted(runs, key=lambda run: run.processes):
        lines.append(
            f"| {run.processes} | **{run.rate:,.0f}** | {run.rate / base:.2f} | "
            f"{pct(run.latencies, 0.5) * 1000:.2f} ms | {pct(run.latencies, 0.99) * 1000:.2f} ms | "
            f"{run.cpu.describe()} | {run.per_core:,.0f} | {run.waits} | "
            f"{run.lag_at_end:,} events | {run.catch_up:.1f} s "
            f"({run.lag_at_end / max(run.catch_up, 1e-9):,.0f} events/s) |"
        )
    lines += [
        "",
        f"In each process, a second thread reads posts back as their authors would (one in "
        f"{READ_EVERY}, when it is done with the last), while the first goes on posting: the "
        "author's home timeline, once the projections have reached the post (a read waits "
        "at most 2 s, then shows what they have); the time is from the post's return to "
        "the page:",
        "",
        "| processes | reads | showed the post | post to page p50 | p99 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for run in sorted(runs, key=lambda run: run.processes):
        waits = [wait for wait, _ in run.reads] or [0.0]
        shown = sum(1 for _, seen in run.reads if seen)
        lines.append(
            f"| {run.processes} | {len(run.reads)} | {shown} | {pct(waits, 0.5) * 1000:.0f} ms | "
            f"{pct(waits, 0.99) * 1000:.0f} ms |"
        )
    lines += [
        "",
        f"### 2. The event store's ceiling ({options.seconds:g} s each)",
        "",
        "Events stored per second by K writers (processes, or pgbench clients) at once. "
        "Every insert takes eventsourcing's `LOCK TABLE ... IN EXCLUSIVE MODE`, except the "
        "last row's, the same rows without it.",
        "",
        "| writer | " + " | ".join(f"K = {k}" for k in COUNTS) + " | CPU at K = 8 |",
        "| --- | " + " | ".join("---" for _ in COUNTS) + " | --- |",
    ]
    for kind, by_writers in ceiling.rows.items():
        cells = [f"{by_writers[k][0]:,.0f}" if k in by_writers else "-" for k in COUNTS]
        top = by_writers.get(COUNTS[-1])
        lines.append(
            f"| {kind} | " + " | ".join(cells) + f" | {top[1].describe() if top else '-'} |"
        )
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    args.add_argument("--seconds", type=float, default=10.0)
    args.add_argument("--users", type=int, default=500)
    args.add_argument("--follows", type=int, default=20)
    args.add_argument("--no-doc", action="store_true")
    args.add_argument("--skip-scale", action="store_true")
    args.add_argument("--skip-ceiling", action="store_true")
    options = args.parse_args(argv)
    cfg = PgConfig.parse([])
    started = time.perf_counter()
    run = f"bench_scale_{os.getpid()}"
    namespace = f"bench-scale-{os.getpid()}"
    machine = describe_machine(cfg)
    admin = psycopg.connect(**cfg.pg, autocommit=True)
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(run)))
    try:
        base = cfg.settings(run, namespace)
        settings = dataclasses.replace(base, extra_env=POOL)
        runs: list[ScaleRun] = []
        if not options.skip_scale:
            log(f"network: {options.users} users, {options.follows} follows each")
            names = build_network(settings, options.users, options.follows)
            # Up, then down again: the machine's other load drifts; each count
            # gets a run early and a run late.
            for count in (*COUNTS, *reversed(COUNTS)):
                log(f"scale-out: {count} processes")
                runs.append(scale_run(cfg, settings, names, count, options.seconds))
                log(f"  {runs[-1].rate:,.0f} posts/s; {runs[-1].cpu.describe()}")
        ceiling = Ceiling()
        if options.skip_ceiling:
            print(report(cfg, machine, options, runs, ceiling, 0.0))
            return 0
        upstream = dataclasses.replace(
            base, extra_env={**POOL, "APPLICATION_RECORDER_TOPIC": UPSTREAM_RECORDER}
        )
        for kind, writer_settings, batch in (
            ("Chirp's recorder, 1 event per insert", settings, 1),
            ("eventsourcing's recorder, 1 event per insert", upstream, 1),
            ("Chirp's recorder, 10 events per insert", settings, 10),
        ):
            for writers in COUNTS:
                rate, cpu = ceiling_run(writer_settings, writers, batch, options.seconds)
                ceiling.add(kind, writers, rate, cpu)
                log(f"ceiling: {kind}, K = {writers}: {rate:,.0f} events/s; {cpu.describe()}")
        schema = f'"{run}"'
        admin.execute(
            sql.SQL(
                "CREATE TABLE {}.unlocked_events (originator_id uuid, originator_version bigint, "
                "topic text, state bytea, notification_id bigserial, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(sql.Identifier(run))
        )
        state = "\\x" + STATE.hex()  # pgbench reads ":word" as a variable: no colons
        scripts = {
            "pgbench, Chirp's insert function (with the lock)": (
                f"SELECT * FROM {schema}.chirp_insert_one_chirp_events("
                f"gen_random_uuid(), 1, 'chirp.TweetPosted', '{state}'::bytea);"
            ),
            "pgbench, the same row without the lock": (
                f"INSERT INTO {schema}.unlocked_events (originator_id, originator_version, topic, "
                f"state) VALUES (gen_random_uuid(), 1, 'chirp.TweetPosted', '{state}'::bytea) "
                "RETURNING notification_id;"
            ),
        }
        for kind, script in scripts.items():
            for clients in COUNTS:
                rate, cpu = pgbench(cfg, script, clients, options.seconds)
                ceiling.add(kind, clients, rate, cpu)
                log(f"ceiling: {kind}, K = {clients}: {rate:,.0f} events/s; {cpu.describe()}")
        section = report(cfg, machine, options, runs, ceiling, (time.perf_counter() - started) / 60)
    finally:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(run)))
        client = redis.Redis.from_url(cfg.redis_url)
        for key in client.scan_iter(f"{namespace}*", count=1000):
            client.delete(key)
    print(section)
    if not options.no_doc and not options.skip_scale and not options.skip_ceiling:
        write_section(SECTION, section)
        log("wrote its section of docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

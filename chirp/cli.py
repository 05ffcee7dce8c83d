"""The ``chirp`` command: replay feeds, load a workload file, run a short demo,
run the feed workers (Dramatiq, ``CHIRP_PROJECTION=dramatiq``), and say where
each projection is (``chirp status``).

Bad input ends with a one-line message on stderr and exit status 2, never a
traceback; a replay stopped by an event it cannot project, with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from adapters.inmemory.feeds import InMemoryFeedProvider
from application.feeds import FeedUnavailableError
from application.projection_status import ProjectionStatus
from application.replay import ReplayStopped, count_events, rebuild_feeds, replay_feeds
from application.workload import WorkloadError, load_workload, load_workload_one_by_one
from chirp.bootstrap import build_chirp, build_commands, build_feed_projector, build_workers
from chirp.settings import ConfigurationError, Settings
from domain.errors import DomainError


def command_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Feeds in Redis are rebuilt in place: the namespace is emptied (feeds,
    their position, the catalog's cache), then the whole log is projected
    into it again. In-memory feeds live in each process (a web process
    rebuilds its own when it starts), and GetStream's cannot be emptied from
    here: the log is replayed into an in-memory provider, which measures it."""
    if settings.feed_provider == "redis":
        return _rebuild_redis_feeds(settings, args)
    chirp = build_chirp(settings, read_own_writes=False)
    try:
        total = count_events(chirp.commands)
        with tqdm(total=total, unit="event", desc="replaying", disable=args.quiet) as bar:
            report = replay_feeds(
                chirp.commands,
                InMemoryFeedProvider(),
                settings.follow_copy_limit,
                bar.update,
            )
    finally:
        chirp.close()
    print(
        f"replayed {report.events:,} events in {report.seconds:.2f} s: "
        f"{report.events_per_second:,.0f} events/s"
    )
    return 0


def _rebuild_redis_feeds(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.redis.feeds import RedisFeedProvider

    if not args.yes:
        print(
            f"chirp: replay empties the Redis namespace {settings.redis_namespace!r} and "
            "projects every event into it again (pages miss posts until it is done; the event "
            "log is not touched): run `chirp replay --yes` to go ahead",
            file=sys.stderr,
        )
        return 2
    commands = build_commands(settings)
    projector, provider = build_feed_projector(settings)
    try:
        assert isinstance(provider, RedisFeedProvider)
        removed = provider.clear()
        print(f"emptied {settings.redis_namespace!r}: {removed:,} keys", flush=True)
        total = count_events(commands)
        with tqdm(total=total, unit="event", desc="rebuilding", disable=args.quiet) as bar:
            report = rebuild_feeds(commands, projector, bar.update)
    finally:
        commands.close()
    print(
        f"rebuilt the feeds: projected {report.events:,} events in {report.seconds:.2f} s: "
        f"{report.events_per_second:,.0f} events/s"
    )
    return 0


def command_load(settings: Settings, args: argparse.Namespace) -> int:
    """The ops go through the domain's rules, many to a write (see
    ``application.workload``); no feed is projected here: the web processes
    and workers catch up on the new events as on any others."""
    path = Path(args.workload)
    if not path.is_file():
        raise WorkloadError(f"no workload file at {path}")
    commands = build_commands(settings)
    load = load_workload_one_by_one if args.one_by_one else load_workload
    try:
        with path.open(encoding="utf-8") as lines:
            ops = _limited(lines, args.limit)
            with tqdm(total=args.limit, unit="op", desc="loading", disable=args.quiet) as bar:
                stats = load(commands, ops, on_op=bar.update)
    finally:
        commands.close()
    print(json.dumps(stats, sort_keys=True))
    return 0


def _limited(lines: Iterator[str], limit: int | None) -> Iterator[str]:
    for number, line in enumerate(lines):
        if limit is not None and number >= limit:
            return
        yield line


def command_demo(settings: Settings, args: argparse.Namespace) -> int:
    chirp = build_chirp(settings)
    try:
        chirp.sync()
        if count_events(chirp.commands) == 0:
            chirp.register("alice", "Alice")
            chirp.register("bob", "Bob")
            chirp.follow("bob", "alice")
            chirp.post("alice", "Hello #Chirp! Say hi, @bob https://example.com")
            chirp.post("bob", "Hi @alice, loving #chirp already")
        for username in ("bob", "alice"):
            print(f"--- home timeline of @{username}")
            for item in chirp.queries.home_timeline(username).items:
                print(f"{item.posted_at:%Y-%m-%d %H:%M} @{item.author.username}: {item.text}")
        print("--- #chirp")
        for item in chirp.queries.hashtag("chirp").items:
            print(f"@{item.author.username}: {item.text}")
    finally:
        chirp.close()
    return 0


def command_status(settings: Settings, args: argparse.Namespace) -> int:
    """Each projection's position, the end of the log, and the oldest event
    it has still to project. Exit status 1 when a projection's position
    cannot be read or that event has waited more than ``--max-lag`` seconds
    (a monitoring check); the error of a failing event is in the log of the
    process projecting it."""
    chirp = build_chirp(settings, read_own_writes=False)
    try:
        statuses = chirp.projections()
    finally:
        chirp.close()
    in_each_process = settings.feed_provider == "inmemory"
    now = datetime.now(UTC)
    healthy = True
    for status in statuses:
        if status.name == "feeds" and in_each_process:
            print("feeds: in memory, in each web process (rebuilt when it starts): see /health")
            continue
        line, late = _status_line(status, now, args.max_lag)
        print(line)
        healthy = healthy and status.position is not None and not late
    return 0 if healthy else 1


def _status_line(status: ProjectionStatus, now: datetime, max_lag: float) -> tuple[str, bool]:
    """The line ``chirp status`` prints for ``status``, and whether its
    oldest waiting event is older than ``max_lag`` seconds."""
    if status.position is None:
        return f"{status.name}: position unreadable (its store is out of reach)", False
    line = f"{status.name}: at event {status.position:,} of {status.head:,}"
    pending = status.pending
    if pending is None:
        return line + ", up to date", False
    line += f", {status.lag:,} behind; next: event {pending.event_id:,} ({pending.topic})"
    if pending.stored_at is None:
        return line + ", which cannot be read", True
    waited = (now - pending.stored_at).total_seconds()
    line += f", stored {waited:,.0f} s ago"
    late = waited > max_lag
    if late:
        line += f": more than {max_lag:g} s behind (see docs/operations.md)"
    return line, late


def command_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run Dramatiq worker threads for the feed actors until SIGINT/SIGTERM.
    Start as many of these processes as needed; they share the Redis queues."""
    from dramatiq import Worker

    workers, chirp = build_workers(settings)
    worker = Worker(workers.broker, worker_threads=args.threads)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    worker.start()
    try:
        workers.request_projection()  # whatever was written while no worker ran
        print(f"chirp worker: {args.threads} threads on queue {workers.queue_name}", flush=True)
        stopping.wait()
    finally:
        worker.stop()
        chirp.close()
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="chirp", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="rebuild every feed from the event log")
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.add_argument(
        "--yes", action="store_true", help="with Redis feeds: empty the namespace and rebuild"
    )
    replay.set_defaults(run=command_replay)
    load = commands.add_parser("load-workload", help="apply a workload file to the event store")
    load.add_argument("workload", help="JSON Lines file from shared/workload/generate.py")
    load.add_argument("--limit", type=int, default=None, help="apply only the first N ops")
    load.add_argument("--quiet", action="store_true", help="no progress bar")
    load.add_argument(
        "--one-by-one",
        action="store_true",
        help="store each op as a command of its own (slow; to compare with)",
    )
    load.set_defaults(run=command_load)
    demo = commands.add_parser("demo", help="seed a tiny network and print its feeds")
    demo.set_defaults(run=command_demo)
    worker = commands.add_parser(
        "worker",
        help="run Dramatiq workers projecting the feeds (Redis broker at REDIS_BROKER_URL)",
    )
    worker.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    worker.set_defaults(run=command_worker)
    status = commands.add_parser(
        "status", help="where each projection is, and the event it waits on"
    )
    status.add_argument(
        "--max-lag",
        type=float,
        default=60.0,
        help="exit 1 when an event has waited longer than this many seconds (default 60)",
    )
    status.set_defaults(run=command_status)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(Settings.from_env(), args))
    except (ConfigurationError, DomainError, WorkloadError) as error:
        print(f"chirp: {error}", file=sys.stderr)
        return 2
    except FeedUnavailableError as error:
        print(f"chirp: {error}; nothing was changed that the next run cannot redo", file=sys.stderr)
        return 1
    except ReplayStopped as error:
        print(f"chirp: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

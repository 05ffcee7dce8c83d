"""Benchmark: loading a workload and rebuilding every feed from the event log.

Generates the shared workload (``../shared/workload/generate.py``), then, side
by side in one run (these machines are noisy: compare the ratios):

1. loads it into a SQLite event store in a scratch data directory with
   ``chirp load-workload`` (ops in batches), and into another with
   ``chirp load-workload --one-by-one`` (each op a command of its own, as
   before), in ops/s (wall time of each command, Python's start included);
2. replays it into the in-memory provider with ``chirp replay`` (batches,
   as it runs), in events/s, beside the same replay one event at a time
   (``LogFollower.catch_up``), and where a replay's time goes: reading the
   log (``select_notifications``), turning it into events (the mapper), and
   projecting them (``process_batch``), each timed on its own;
3. rebuilds Redis feeds in place with ``chirp replay --yes``
   (``FEED_PROVIDER=redis``) in a fresh namespace of the local Redis
   (``REDIS_URL``, default 127.0.0.1:6379), deleted afterwards.

Run on demand, not in the test suite::

    .venv/bin/python bench/replay.py --users 1000 --seed 1

With ``--users 1000 --seed 1`` the workload holds 123,630 ops, each one event.
``--one-by-one-ops N`` loads only the first N ops the old way (it takes
minutes). Writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from doc_sections import write_section
from eventsourcing.persistence import Notification, Tracking
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.feeds import InMemoryFeedProvider
from application.log_follower import LogFollower
from application.projectors import FeedProjector
from application.replay import REPLAY_BATCH_SIZE, cyclic_gc_paused
from chirp.bootstrap import build_commands
from chirp.settings import Settings
from domain.tweet import Tweet

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT.parent / "shared" / "workload" / "generate.py"
RECORDED_LOAD_RATE = 353  # ops/s, one by one, docs/benchmarks.md of 2026-11-26
REPLAY_GOAL = 100_000
LOAD_GOAL = 10 * RECORDED_LOAD_RATE


@dataclass(frozen=True)
class Timed:
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--users", type=int, default=1000)
    args.add_argument("--seed", type=int, default=1)
    args.add_argument("--one-by-one-ops", type=int, default=None)
    args.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    options = args.parse_args()
    if not GENERATOR.is_file():
        print(f"bench: no workload generator at {GENERATOR}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        workload = Path(scratch) / "workload.jsonl"
        subprocess.run(
            [sys.executable, str(GENERATOR), "--users", str(options.users),
             "--seed", str(options.seed), "-o", str(workload)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        ops = sum(1 for line in workload.open(encoding="utf-8") if line.strip())
        batched_dir, one_by_one_dir = Path(scratch) / "batched", Path(scratch) / "one-by-one"
        load = load_with(workload, batched_dir, ops, [])
        print(f"load-workload: {load.count:,} ops in {load.seconds:.1f} s: {load.rate:,.0f}/s")
        old_ops = min(ops, options.one_by_one_ops or ops)
        old = load_with(workload, one_by_one_dir, old_ops, ["--one-by-one"])
        print(f"one by one: {old.count:,} ops in {old.seconds:.1f} s: {old.rate:,.0f}/s")
        replay = chirp_replay(batched_dir, {})
        print(
            f"chirp replay: {replay.count:,} events in {replay.seconds:.2f} s: {replay.rate:,.0f}/s"
        )
        per_event = replay_one_event_at_a_time(batched_dir)
        print(f"one event at a time: {per_event.rate:,.0f} events/s")
        phases = replay_phases(batched_dir)
        copies = fan_out_copies(workload)
        print("phases: " + ", ".join(f"{name} {t.seconds:.2f} s" for name, t in phases.items()))
        redis = rebuild_redis(batched_dir)
        print(f"chirp replay --yes (Redis): {redis.count:,} events in {redis.seconds:.2f} s")
    minutes = (time.perf_counter() - started) / 60
    section = report(options, ops, load, old, replay, per_event, phases, copies, redis, minutes)
    print(section)
    if not options.no_doc:
        write_section("bench/replay.py", section)
    return 0


def chirp_command(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "CHIRP_DATA_DIR": str(data_dir), **extra}
    env.pop("DATABASE_URL", None)
    env.pop("FEED_PROVIDER", None)
    env.update(extra)
    return env


def load_with(workload: Path, data_dir: Path, ops: int, flags: list[str]) -> Timed:
    command = [chirp_command("chirp"), "load-workload", "--quiet", *flags, str(workload)]
    command += ["--limit", str(ops)]
    started = time.perf_counter()
    subprocess.run(command, env=environment(data_dir), check=True, stdout=subprocess.DEVNULL)
    return Timed(ops, time.perf_counter() - started)


REPORTED = re.compile(
    r"projected ([\d,]+) events in ([\d.]+) s|replayed ([\d,]+) events in ([\d.]+) s"
)


def chirp_replay(data_dir: Path, extra: dict[str, str], flags: tuple[str, ...] = ()) -> Timed:
    """What ``chirp replay`` reports of itself (without Python's start)."""
    done = subprocess.run(
        [chirp_command("chirp"), "replay", "--quiet", *flags],
        env=environment(data_dir, **extra),
        check=True,
        capture_output=True,
        text=True,
    )
    found = REPORTED.search(done.stdout)
    if found is None:
        raise RuntimeError(f"chirp replay said: {done.stdout!r}")
    count, seconds = found.group(1) or found.group(3), found.group(2) or found.group(4)
    return Timed(int(count.replace(",", "")), float(seconds))


def replay_one_event_at_a_time(data_dir: Path) -> Timed:
    """The replay as it was: ``catch_up``, each event on its own (the cyclic
    collector paused too, so only the batching differs)."""
    commands = build_commands(Settings(data_dir=data_dir))
    projector = FeedProjector(InMemoryFeedProvider(), POPOTrackingRecorder())
    follower = LogFollower(commands, projector, batch_size=REPLAY_BATCH_SIZE)
    try:
        with cyclic_gc_paused():
            started = time.perf_counter()
            events = follower.catch_up()
            return Timed(events, time.perf_counter() - started)
    finally:
        commands.close()


def replay_phases(data_dir: Path) -> dict[str, Timed]:
    """A replay's three parts, each timed alone over the whole log."""
    commands = build_commands(Settings(data_dir=data_dir))
    try:
        with cyclic_gc_paused():
            started = time.perf_counter()
            notifications: list[Notification] = []
            start = 0
            while batch := commands.recorder.select_notifications(
                start=start, limit=REPLAY_BATCH_SIZE, inclusive_of_start=False
            ):
                notifications += batch
                start = batch[-1].id
            read = time.perf_counter()
            events = [commands.mapper.to_domain_event(n) for n in notifications]
            decoded = time.perf_counter()
            projector = FeedProjector(InMemoryFeedProvider(), POPOTrackingRecorder())
            pairs = [
                (event, Tracking(commands.name, n.id))
                for event, n in zip(events, notifications, strict=True)
            ]
            # The workload's registrations and follows come first, then its
            # posts with unfollows and deletes among them: timed apart.
            posts_from = next(
                (i for i, (event, _) in enumerate(pairs) if isinstance(event, Tweet.Posted)),
                len(pairs),
            )
            before = time.perf_counter()
            for at in range(0, posts_from, REPLAY_BATCH_SIZE):
                projector.process_batch(pairs[at : min(at + REPLAY_BATCH_SIZE, posts_from)])
            follows_done = time.perf_counter()
            for at in range(posts_from, len(pairs), REPLAY_BATCH_SIZE):
                projector.process_batch(pairs[at : at + REPLAY_BATCH_SIZE])
            projected = time.perf_counter()
    finally:
        commands.close()
        gc.collect()
    count = len(notifications)
    return {
        "read": Timed(count, read - started),
        "decode": Timed(count, decoded - read),
        "project": Timed(count, projected - before),
        "project follows": Timed(posts_from, follows_done - before),
        "project posts": Timed(count - posts_from, projected - follows_done),
    }


def fan_out_copies(workload: Path) -> int:
    """How many timeline entries the workload's posts make by fan-out: each
    post, its author's followers at that moment."""
    followers: dict[str, set[str]] = {}
    copies = 0
    with workload.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            op = json.loads(line)
            if op["op"] == "follow":
                followers.setdefault(op["followee"], set()).add(op["follower"])
            elif op["op"] == "unfollow":
                followers.get(op["followee"], set()).discard(op["follower"])
            elif op["op"] == "post":
                copies += len(followers.get(op["username"], ()))
    return copies


def rebuild_redis(data_dir: Path) -> Timed:
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    namespace = f"bench-replay-{uuid.uuid4().hex[:12]}"
    extra = {"FEED_PROVIDER": "redis", "REDIS_URL": url, "CHIRP_REDIS_NAMESPACE": namespace}
    client = redis.Redis.from_url(url)
    try:
        return chirp_replay(data_dir, extra, ("--yes",))
    finally:
        for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            client.unlink(key)
        client.close()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def met(value: float, goal: float) -> str:
    return "met" if value >= goal else "**missed**"


def row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def report(
    options: argparse.Namespace,
    ops: int,
    load: Timed,
    old: Timed,
    replay: Timed,
    per_event: Timed,
    phases: dict[str, Timed],
    copies: int,
    redis: Timed,
    minutes: float,
) -> str:
    date = datetime.now(UTC).date().isoformat()
    read, decode, project = phases["read"], phases["decode"], phases["project"]
    follows, posts = phases["project follows"], phases["project posts"]
    total = read.seconds + decode.seconds + project.seconds
    command = f"    .venv/bin/python bench/replay.py --users {options.users} --seed {options.seed}"
    if options.one_by_one_ops:
        command += f" --one-by-one-ops {options.one_by_one_ops}"

    def timed(name: str, part: Timed, unit: str) -> str:
        return row(name, f"{part.count:,}", f"{part.seconds:.2f} s", f"{part.rate:,.0f} {unit}/s")

    def share(name: str, part: Timed) -> str:
        seconds = f"{part.seconds:.2f} s"
        return row(name, seconds, f"{part.seconds / total:.0%}", f"{part.rate:,.0f} events/s")

    load_measured = (
        f"{load.rate:,.0f} ops/s: {load.rate / RECORDED_LOAD_RATE:.1f} x that figure, "
        f"{load.rate / old.rate:.1f} x one by one in this run ({old.rate:,.0f} ops/s)"
    )
    lines = [
        "## Replay and loading a workload",
        "",
        command,
        "",
        f"{date}; {os.cpu_count()} cores ({cpu_name()}), Python {platform.python_version()},"
        " SQLite event store, Redis on this machine. The run took"
        f" {minutes:.1f} minutes. The shared workload for {options.users:,} users (seed"
        f" {options.seed}): {ops:,} ops, each one event. Figures measured side by side in"
        " this run: compare ratios.",
        "",
        "### Goals",
        "",
        row("goal", "measured", ""),
        row("---", "---", "---"),
        row(
            f"loading >= 10 x {RECORDED_LOAD_RATE} ops/s (the figure of 2026-11-26)",
            load_measured,
            met(load.rate, LOAD_GOAL),
        ),
        row(
            f"replay >= {REPLAY_GOAL:,} events/s into the in-memory provider",
            f"{replay.rate:,.0f} events/s ({replay.seconds:.2f} s)",
            met(replay.rate, REPLAY_GOAL),
        ),
        "",
        "### Loading (`chirp load-workload`)",
        "",
        row("way", "ops", "time", "rate"),
        row("---", "---", "---", "---"),
        timed("in batches of 5,000 ops (as it runs)", load, "ops"),
        timed("one op a command (`--one-by-one`, as before)", old, "ops"),
        "",
        "Wall time of each command, Python's start included.",
        "",
        "### Replay (`chirp replay`)",
        "",
        row("replay", "events", "time", "rate"),
        row("---", "---", "---", "---"),
        timed(
            f"in-memory provider, in batches of {REPLAY_BATCH_SIZE:,} (as it runs)",
            replay,
            "events",
        ),
        timed("in-memory provider, one event at a time (`catch_up`)", per_event, "events"),
        timed(
            "Redis feeds rebuilt in place (`chirp replay --yes`, `FEED_PROVIDER=redis`)",
            redis,
            "events",
        ),
        "",
        "Where an in-memory replay's time goes, each part timed alone over the whole log:",
        "",
        row("part", "time", "share", "rate alone"),
        row("---", "---", "---", "---"),
        share(f"reading the log (`select_notifications`, batches of {REPLAY_BATCH_SIZE:,})", read),
        share("turning rows into events (eventsourcing's mapper)", decode),
        share("projecting them (`FeedProjector.process_batch`)", project),
        share("of which the registrations and follows before the first post", follows),
        share("of which the rest: posts, with unfollows, deletes and follows among them", posts),
        "",
        f"The posts copy {copies:,} entries into their authors' followers' timelines (counted"
        " from the workload: each post, its author's followers then):"
        f" {posts.seconds / copies * 1e6:.1f} us of the rest's projecting time per entry."
        f" Reading and decoding alone would allow {count_rate(read, decode):,.0f} events/s.",
    ]
    return "\n".join(lines)


def count_rate(*parts: Timed) -> float:
    return parts[0].count / sum(part.seconds for part in parts)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: Chirp's home page beside a trivial Django view, on ``make run``'s server.

One gunicorn server, started as ``make run`` starts it (``chirp/gunicorn_conf.py``:
one worker process of 8 threads unless ``--workers``/``--threads`` say
otherwise) on a seeded network (``manage.py seed_network``), with the Django
settings of ``bench/server_settings.py``: Chirp's, plus a trivial view at
``/bench/trivial``. Locust (``bench/server_locustfile.py``, headless, on
loopback) then runs a mix of people logged in, alternating two phases of
``--run-time`` seconds each (trivial, home, home, trivial, ... ``--rounds``
pairs), after an unrecorded warm-up:

- readers (``--readers``) request one page back to back: the trivial view
  in one phase, their home page in the other;
- writers (``--writers``) post (2 in 4), follow and unfollow (1 in 4 each)
  at ``--writes-per-second`` each, and browsers (``--browsers``) read
  profile and tag pages at ``--browses-per-second`` each, in both phases.

It reports requests/s, p50 and p99 of every kind of request in each phase,
the errors (failed checks, and errors in the server's log), the CPU the
server and locust used, and the goal: home pages/s >= 0.5 x trivial views/s,
with zero errors; ``--profile`` adds where the server's threads spend their
time (py-spy, ``bench/server_profile.py``). Run on demand, not in the test
suite::

    .venv/bin/python -m pip install -e '.[dev,bench]'   # locust and py-spy, once
    .venv/bin/python bench/server.py --profile          # about 4 minutes

Writes its section of docs/benchmarks.md. Seeding takes a minute or two:
``--keep DIR`` seeds DIR once and reuses it (each run adds its posts).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from doc_sections import write_section
from server_profile import GUNICORN, PARTS, Recording, py_spy

from application.synthetic import TAGS

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "bench" / "server_locustfile.py"
SETTINGS = "bench.server_settings"
TRIVIAL_PATH = "/bench/trivial"
TRIVIAL_TEXT = "Hello from a trivial Django view."  # bench/server_urls.py's answer
PASSWORD = "bench-server-password"
POST_TAG = "benchmark"
GOAL_RATIO = 0.5
READY_TIMEOUT_SECONDS = 300.0
# What readers request in each phase: the path, the request's name, and a
# text each answer must hold ({username}: the reader's).
PHASES = {
    "trivial": (TRIVIAL_PATH, "trivial view", TRIVIAL_TEXT),
    "home": ("/", "home page", "@{username}"),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the server ------------------------------------------------------------------


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "FEED_PROVIDER", "CHIRP_PROJECTION", "CHIRP_CACHE_URL")
    }
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(
        CHIRP_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE=SETTINGS,
        PYTHONPATH=pythonpath,
        **extra,
    )
    return env


def seed(data_dir: Path, users: int, posts_per_user: int, seed_value: int) -> None:
    """Migrate and seed ``data_dir`` unless it holds a network already."""
    env = server_env(data_dir)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True)
    marker = data_dir / "bench-seeded.json"
    if marker.exists():
        log(f"reusing the network in {data_dir}: {marker.read_text().strip()}")
        return
    log(f"seeding {users:,} users, {posts_per_user} posts each (manage.py seed_network)")
    started = time.monotonic()
    with open(data_dir / "bench-seed.log", "w") as progress:  # its progress bar
        seeded = subprocess.run(
            [*manage, "seed_network", str(users), "--posts-per-user", str(posts_per_user),
             "--seed", str(seed_value)],
            env=env, cwd=ROOT, check=True, stdout=subprocess.PIPE, stderr=progress, text=True,
        )  # fmt: skip
    counts = json.loads(seeded.stdout.strip().splitlines()[-1])
    info = {"users": users, "posts_per_user": posts_per_user, "seed": seed_value, **counts}
    marker.write_text(json.dumps(info))
    log(f"seeded in {time.monotonic() - started:.0f} s: {counts}")


def create_accounts(data_dir: Path, names: list[str]) -> None:
    """Django accounts (log-ins) for seeded people, who exist only in the event log."""
    script = ROOT / "bench" / "server_accounts.py"
    subprocess.run(
        [sys.executable, str(script), PASSWORD, *names],
        env=server_env(data_dir), cwd=ROOT, check=True,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def wait_until_ready(self) -> None:
        """Poll the welcome page (it builds the worker's Chirp, which catches
        up with the whole log first) until it answers."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(
                    self.base_url + "/", timeout=READY_TIMEOUT_SECONDS
                ) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)  # the next poll, within the deadline
        raise RuntimeError(f"the server was not ready in {READY_TIMEOUT_SECONDS:.0f} s")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


def start_server(data_dir: Path, workers: int, threads: int) -> Server:
    port = free_port()
    env = server_env(
        data_dir,
        CHIRP_BIND=f"127.0.0.1:{port}",
        CHIRP_WEB_WORKERS=str(workers),
        CHIRP_WEB_THREADS=str(threads),
    )
    log_path = data_dir / "bench-server.log"
    serve = [sys.executable, "-m", "gunicorn", "--config", "python:chirp.gunicorn_conf"]
    with open(log_path, "wb") as output:
        process = subprocess.Popen(serve, env=env, cwd=ROOT, stdout=output, stderr=output)
    return Server(process, f"http://127.0.0.1:{port}", log_path)


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


# -- a locust run ----------------------------------------------------------------


@dataclass
class Figures:
    """One kind of request in one phase, over every round of it."""

    durations_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0  # summed over rounds: first start to last end
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.durations_ms) + sum(self.errors.values())

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.durations_ms)
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Phase:
    name: str
    figures: dict[str, Figures] = field(default_factory=dict)
    server_cpu: float = 0.0
    locust_cpu: float = 0.0
    wall: float = 0.0
    profile: Counter[str] = field(default_factory=Counter)

    def add(self, run: Run) -> None:
        self.server_cpu += run.server_cpu
        self.locust_cpu += run.locust_cpu
        self.wall += run.wall
        self.profile.update(run.profile)
        spans: dict[str, tuple[float, float]] = {}
        for method, name, start, duration, error in run.records:
            assert isinstance(start, float) and isinstance(duration, (int, float))
            key = f"{name}" if method == "GET" or name != "log in" else f"{name} ({method})"
            figures = self.figures.setdefault(key, Figures())
            if error is None:
                figures.durations_ms.append(float(duration))
            else:
                figures.errors[str(error)] += 1
            first, last = spans.get(key, (start, start))
            spans[key] = (min(first, start), max(last, start + float(duration) / 1000))
        for key, (first, last) in spans.items():
            self.figures[key].seconds += last - first


@dataclass(frozen=True)
class Plan:
    """Who logs in and what they do: bench/server_locustfile.py reads it."""

    password: str
    readers: list[str]
    writers: list[str]
    browsers: list[str]
    profiles: list[str]
    follow_targets: list[str]
    tags: list[str]
    post_tag: str
    writes_per_second: float
    browses_per_second: float

    @property
    def people(self) -> list[str]:
        return [*self.readers, *self.writers, *self.browsers]


@dataclass
class Run:
    """One locust run: its requests, and the CPU seconds the server and
    locust used, its wall time, and the server's profile (``--profile``)."""

    records: list[list[object]]
    server_cpu: float
    locust_cpu: float
    wall: float
    profile: Counter[str]


def run_locust(
    server: Server, scratch: Path, plan: Plan, phase: str, run_time: int, profile: bool = False
) -> Run:
    """One headless locust run, of ``phase``."""
    path, name, marker = PHASES[phase]
    record = scratch / f"records-{phase}.json"
    plan_file = scratch / "plan.json"
    plan_file.write_text(
        json.dumps(
            {**asdict(plan), "read_path": path, "read_name": name, "read_marker": marker,
             "record": str(record)}
        )
    )  # fmt: skip
    users = len(plan.people)
    locust = shutil.which("locust", path=str(Path(sys.executable).parent)) or "locust"
    command = [
        locust, "-f", str(LOCUSTFILE), "--headless", "--host", server.base_url,
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{run_time}s",
        "--stop-timeout", "10", "--only-summary", "--exit-code-on-error", "0",
    ]  # fmt: skip
    env = {**os.environ, "BENCH_PLAN": str(plan_file)}
    workers = server.worker_pids()
    server_before = cpu_seconds(workers)
    started = time.monotonic()
    log_path = scratch / f"locust-{phase}-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as output:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)
        recordings = [
            Recording(pid, run_time, scratch / f"py-spy-{phase}-{pid}.txt") for pid in workers
        ] if profile else []  # fmt: skip
        # Reaped here, for the CPU it used; locust stops by itself (--run-time).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    server_cpu = cpu_seconds(workers) - server_before
    if process.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"locust failed (status {process.returncode}):\n{tail}")
    samples: Counter[str] = Counter()
    for recording in recordings:
        samples.update(recording.samples())
    # An exception in a user's own code (not a request) shows only in locust's log.
    failures = [
        ["-", "locust user code", time.time(), 0.0, line.strip()]
        for line in log_path.read_text(errors="replace").splitlines()
        if "Traceback" in line
    ]
    return Run(
        records=json.loads(record.read_text()) + failures,
        server_cpu=server_cpu,
        locust_cpu=usage.ru_utime + usage.ru_stime,
        wall=wall,
        profile=samples,
    )


# -- the report ------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as info:
        kib = next(int(line.split()[1]) for line in info if line.startswith("MemTotal"))
    return (
        f"{os.cpu_count()} cores ({model}), {kib / 2**20:.0f} GiB, Python "
        f"{platform.python_version()}, Django {version('django')}, gunicorn "
        f"{version('gunicorn')}, locust {version('locust')}"
    )


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f} ms"


ORDER = [
    "trivial view", "home page", "profile", "tag", "post", "follow", "unfollow",
    "log in", "log in (POST)",
]  # fmt: skip


def phase_table(phases: dict[str, Phase]) -> list[str]:
    lines = [
        "| phase | request | requests | requests/s | p50 | p99 | errors |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for phase in phases.values():
        for key in sorted(phase.figures, key=lambda k: (ORDER.index(k) if k in ORDER else 99, k)):
            f = phase.figures[key]
            errors = sum(f.errors.values())
            b = "**" if key == PHASES[phase.name][1] else ""  # the readers' page in bold
            # Log-ins happen as each user starts, not through the phase: no rate.
            rate = "-" if key.startswith("log in") else f"{b}{f.per_second:,.1f}{b}"
            lines.append(
                f"| {phase.name} | {b}{key}{b} | {f.requests:,} | {rate}"
                f" | {ms(f.percentile(0.5))} | {ms(f.percentile(0.99))} | {errors} |"
            )
    return lines


def profile_table(phases: dict[str, Phase]) -> list[str]:
    names = list(phases)
    lines = [
        "Where the server's worker process spends its time (`--profile`: py-spy samples of its "
        "threads, 100 a second; a thread waiting in a socket write, a SQLite query or for the "
        "GIL counts as busy, so these are shares of the threads' time, not of CPU):",
        "",
        "| part of the work | " + " | ".join(f"{name} phases" for name in names) + " |",
        "| --- | " + " | ".join("---" for _ in names) + " |",
    ]
    totals = {name: sum(phases[name].profile.values()) or 1 for name in names}
    for part in [name for name, _ in PARTS] + [GUNICORN]:
        shares = [phases[name].profile[part] / totals[name] for name in names]
        if max(shares) >= 0.005:
            lines.append(f"| {part} | " + " | ".join(f"{share:.0%}" for share in shares) + " |")
    return lines


def report(
    args: argparse.Namespace,
    phases: dict[str, Phase],
    seeded: dict[str, object],
    server_errors: list[str],
    took: float,
) -> tuple[str, bool]:
    # A phase too short for its readers to get past logging in has no figures.
    trivial = phases["trivial"].figures.get(PHASES["trivial"][1], Figures())
    home = phases["home"].figures.get(PHASES["home"][1], Figures())
    ratio = home.per_second / trivial.per_second if trivial.per_second else math.nan
    errors = sum(sum(f.errors.values()) for p in phases.values() for f in p.figures.values())
    met = ratio >= GOAL_RATIO and errors == 0 and not server_errors
    command = " ".join(["    .venv/bin/python bench/server.py", *args.given])
    seeded_text = ", ".join(f"{seeded[k]:,} {k}s" for k in ("register", "follow", "post"))
    lines = [
        "## Web server: the home page beside a trivial Django view",
        "",
        command,
        "",
        f"{datetime.now(UTC):%Y-%m-%d}; {machine()}; all on this machine, on loopback. "
        f"The run took **{took / 60:.1f} minutes**.",
        "",
        f"One server as `make run` starts it (gunicorn, `chirp/gunicorn_conf.py`): "
        f"{args.workers} worker process of {args.threads} threads, in-memory feeds, "
        f"SQLite stores, on a network seeded by `manage.py seed_network {seeded['users']}` "
        f"({seeded_text}). Locust (`bench/server_locustfile.py`, headless, "
        f"FastHttpUser) logs {args.readers + args.writers + args.browsers} people in: "
        f"{args.readers} readers request one page back to back (the trivial view, or "
        f"their home page), {args.writers} writers post, follow and unfollow "
        f"({args.writes_per_second:g} a second each), {args.browsers} browsers read "
        f"profile and tag pages ({args.browses_per_second:g} a second each). Phases of "
        f"{args.run_time} s alternate ({', '.join(args.order)}) after a warm-up of "
        f"{args.warmup} s; a phase's figures add up its rounds. Every answer is checked "
        "(its status, and a text it must hold: the reader's own @name on the home page); "
        "writes are not followed to the page they redirect to.",
        "",
        "| goal | measured | |",
        "| --- | --- | --- |",
        f"| home pages/s >= {GOAL_RATIO} x trivial views/s, zero errors | "
        f"**{ratio:.2f} x** ({home.per_second:,.0f} vs {trivial.per_second:,.0f} per second), "
        f"{errors} errors, {len(server_errors)} in the server's log | "
        f"{'met' if met else '**missed**'} |",
        "",
        *phase_table(phases),
        "",
        "CPU used, in seconds per second of the phase (1.0 is one core busy): "
        + "; ".join(
            f"{p.name}: server {p.server_cpu / p.wall:.2f}, locust {p.locust_cpu / p.wall:.2f}"
            for p in phases.values()
        )
        + ".",
    ]
    if any(phase.profile for phase in phases.values()):
        lines += ["", *profile_table(phases)]
    every_error = Counter[str]()
    for phase in phases.values():
        for figures in phase.figures.values():
            every_error.update(figures.errors)
    if every_error or server_errors:
        lines += ["", "Errors:", ""]
        lines += [f"- {count} x {error}" for error, count in every_error.most_common(10)]
        lines += [f"- server log: {line}" for line in server_errors[:10]]
    return "\n".join(lines), met


# -- main -------------------------------------------------------------------------


def choose_people(users: int, args: argparse.Namespace) -> Plan:
    rng = random.Random(args.seed)
    names = [f"user{i}" for i in range(1, users + 1)]
    wanted = args.readers + args.writers + args.browsers
    if wanted > users:
        raise SystemExit(f"bench: {wanted} people log in, but the network has {users}")
    people = rng.sample(names, wanted)
    writers_end = args.readers + args.writers
    return Plan(
        password=PASSWORD,
        readers=people[: args.readers],
        writers=people[args.readers : writers_end],
        browsers=people[writers_end:],
        profiles=rng.sample(names, min(50, users)),
        follow_targets=rng.sample(names, min(50, users)),
        tags=TAGS,
        post_tag=POST_TAG,
        writes_per_second=args.writes_per_second,
        browses_per_second=args.browses_per_second,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=300, help="people in the seeded network")
    parser.add_argument("--posts-per-user", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--browsers", type=int, default=4)
    parser.add_argument("--writes-per-second", type=float, default=1.0, help="per writer")
    parser.add_argument("--browses-per-second", type=float, default=2.0, help="per browser")
    parser.add_argument("--run-time", type=int, default=30, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of phases")
    parser.add_argument("--warmup", type=int, default=10, help="seconds, not recorded")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="seed this data directory once, reuse it")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the server with py-spy, report where it spends",
    )
    args = parser.parse_args(argv)
    args.given = sys.argv[1:] if argv is None else argv
    # Alternate, so that drift over the run weighs on both alike.
    args.order = [p for i in range(args.rounds) for p in ("trivial", "home")[:: 1 - 2 * (i % 2)]]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile and py_spy() is None:
        print("bench: no py-spy here for --profile; install it: .venv/bin/python -m pip "
              "install -e '.[dev,bench]'", file=sys.stderr)  # fmt: skip
        return 2
    if shutil.which("locust", path=str(Path(sys.executable).parent)) is None:
        print("bench: no locust here; install it: .venv/bin/python -m pip install -e "
              "'.[dev,bench]'", file=sys.stderr)  # fmt: skip
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-server-") as scratch_name:
        scratch = Path(scratch_name)
        data_dir = args.keep or scratch / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        seed(data_dir, args.users, args.posts_per_user, args.seed)
        seeded = json.loads((data_dir / "bench-seeded.json").read_text())
        plan = choose_people(int(seeded["users"]), args)
        create_accounts(data_dir, plan.people)
        server = start_server(data_dir, args.workers, args.threads)
        try:
            server.wait_until_ready()
            log(f"server ready at {server.base_url}; warm-up of {args.warmup} s")
            run_locust(server, scratch, plan, "home", args.warmup)
            phases = {name: Phase(name) for name in ("trivial", "home")}
            for name in args.order:
                log(f"phase {name}, {args.run_time} s")
                run = run_locust(server, scratch, plan, name, args.run_time, args.profile)
                phases[name].add(run)
        finally:
            status = server.stop() if server.process.poll() is None else server.process.returncode
        server_log = server.log_path.read_text(errors="replace").splitlines()
        server_errors = [
            line for line in server_log
            if "Traceback" in line or "[ERROR]" in line or "[CRITICAL]" in line
        ]  # fmt: skip
        if status != 0:
            server_errors.append(f"the server exited with status {status}")
        section, met = report(args, phases, seeded, server_errors, time.monotonic() - started)
    print(section)
    if not args.no_doc:
        write_section("bench/server.py", section)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

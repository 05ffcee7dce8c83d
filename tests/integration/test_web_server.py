"""``make run``'s web server, started as the Makefile starts it.

Gunicorn with ``chirp/gunicorn_conf.py`` (one worker process of threads, the
embedded defaults: SQLite stores, in-memory feeds) on a free port and a
fresh data directory, with Django's production settings (``web.settings``).
It answers every connection of a burst (Django's development server, with a
listen queue of 10, turned some away), shows a person their post on the very next
page, whoever serves it, and stops cleanly on SIGTERM. It also refuses to
start several worker processes over in-memory feeds, which would break that.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.services import require_redis
from tests.web_server import ROOT, Visitor

# As the Makefile's `make run` serves (test_make_run_serves_so checks it).
MAKE_RUN_SERVES = "$(BIN)/gunicorn --config python:chirp.gunicorn_conf"
SERVE = [sys.executable, "-m", "gunicorn", "--config", "python:chirp.gunicorn_conf"]
MIGRATE = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
# Settings of other tests' servers that must not leak into this one.
NOT_INHERITED = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "FEED_PROVIDER",
    "CHIRP_PROJECTION",
    "CHIRP_CACHE_URL",
    "REDIS_URL",
    "CHIRP_REDIS_NAMESPACE",
    "CHIRP_WEB_WORKERS",
    "CHIRP_WEB_THREADS",
)
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 60.0
BURST = 60
POSTS = 20
PASSWORD = "a-long-test-password-42"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def make_run_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env.update(CHIRP_DATA_DIR=str(data_dir), **extra)
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def wait_until_ready(server: Server) -> None:
    """Poll the home page until it answers, the process dies, or the deadline."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited: {server.log.read_text()}")
        try:
            with urllib.request.urlopen(server.base_url + "/", timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)  # the next poll; the deadline bounds the wait
    raise AssertionError(f"not ready in {READY_TIMEOUT_SECONDS} s: {server.log.read_text()}")


def start(
    data_dir: Path, extra_env: Mapping[str, str] | None = None, migrate: bool = True
) -> Server:
    """Migrate ``data_dir`` and serve it, as ``make run`` does (without its demo)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = make_run_env(data_dir, CHIRP_BIND=f"127.0.0.1:{port}", **(extra_env or {}))
    if migrate:
        subprocess.run(MIGRATE, env=env, cwd=ROOT, check=True, timeout=120)
    log = data_dir / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(SERVE, env=env, cwd=ROOT, stdout=output, stderr=output)
    return Server(process, f"http://127.0.0.1:{port}", log)


@contextmanager
def serving(data_dir: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """A ready server (it has served a page); killed on exit if still running."""
    running = start(data_dir, extra_env)
    try:
        wait_until_ready(running)
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def test_make_run_serves_so() -> None:
    recipe = (ROOT / "Makefile").read_text().partition("\nrun:")[2].partition("\n\n")[0]
    assert recipe.splitlines()[-1].strip() == MAKE_RUN_SERVES


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("make-run") / "data") as running:
        yield running


def listen_overflows() -> int:
    """How many connections Linux has turned away from full listen queues
    (TcpExt ListenOverflows: it drops the handshake, the client retries
    later or gives up). Counted for every process on this machine."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True))["ListenOverflows"])
    raise AssertionError("no TcpExt counters in /proc/net/netstat")


def test_a_burst_of_new_connections_all_get_answers(server: Server) -> None:
    barrier = threading.Barrier(BURST, timeout=READY_TIMEOUT_SECONDS)

    def fetch(_: int) -> int | str:
        barrier.wait()
        try:  # a new connection each: urllib does not keep connections alive
            with urllib.request.urlopen(server.base_url + "/login", timeout=60) as response:
                return int(response.status)
        except (urllib.error.URLError, OSError) as error:
            return repr(error)

    overflows_before = listen_overflows()
    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(fetch, range(BURST)))

    assert answers == [200] * BURST
    # Not even turned away for a while: Django's development server (a
    # queue of 10) overflows about 140 times on such a burst, and its
    # clients get their answers only after retrying the connection.
    assert listen_overflows() - overflows_before == 0


def sees_own_posts_at_once(base_url: str, username: str) -> None:
    """Sign ``username`` up, then post again and again: each post is on the
    page its form redirects to, and on the profile after it. Each request
    is a new connection, so any worker process may take it."""
    visitor = Visitor(base_url)
    form = {"username": username, "display_name": "", "password": PASSWORD}
    signed_up = visitor.post("/signup", {**form, "password_again": PASSWORD})
    assert signed_up.status == 302, signed_up.body

    for number in range(POSTS):
        text = f"read your writes {number}"
        assert visitor.post("/post", {"text": text}).status == 302
        assert text in visitor.get("/").body
        assert text in visitor.get(f"/@{username}").body


def test_a_person_sees_their_post_on_the_next_page(server: Server) -> None:
    sees_own_posts_at_once(server.base_url, "writer")


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    client = redis.Redis.from_url(require_redis())
    name = f"web-server-{uuid.uuid4().hex}"
    try:
        yield name
    finally:
        for key in client.scan_iter(match=f"{name}*", count=1000):
            client.delete(key)
        client.close()


def test_several_workers_over_redis_feeds_show_a_post_at_once(
    tmp_path: Path, redis_namespace: str
) -> None:
    """The production layout: each worker process projects its commands'
    events into the feeds they share before it answers."""
    redis_feeds = {
        "FEED_PROVIDER": "redis",
        "REDIS_URL": require_redis(),
        "CHIRP_REDIS_NAMESPACE": redis_namespace,
        "CHIRP_WEB_WORKERS": "2",
    }
    with serving(tmp_path / "data", redis_feeds) as server:
        sees_own_posts_at_once(server.base_url, "writer")
        assert server.stop() == 0
    assert server.log.read_text().count("Booting worker") == 2


def test_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with serving(tmp_path / "data") as server:  # its Chirp is built, its followers run
        assert server.stop() == 0

    log = server.log.read_text()
    assert "Shutting down: Master" in log, log
    assert "SIGKILL" not in log, log  # no worker outlived the graceful timeout
    assert "Traceback" not in log, log
    port = int(server.base_url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):  # it no longer listens
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


def test_refuses_several_workers_over_in_memory_feeds(tmp_path: Path) -> None:
    refused = start(tmp_path / "data", {"CHIRP_WEB_WORKERS": "2"}, migrate=False)

    assert refused.process.wait(timeout=STOP_TIMEOUT_SECONDS) == 1
    log = refused.log.read_text()
    assert "2 worker processes need feeds they share (FEED_PROVIDER=redis" in log, log
    assert "Traceback" not in log, log


def test_refuses_a_number_of_threads_that_is_no_number(tmp_path: Path) -> None:
    refused = start(tmp_path / "data", {"CHIRP_WEB_THREADS": "many"}, migrate=False)

    assert refused.process.wait(timeout=STOP_TIMEOUT_SECONDS) == 1
    log = refused.log.read_text()
    assert "CHIRP_WEB_THREADS must be a whole number, at least 1; it is 'many'" in log, log
    assert "Traceback" not in log, log

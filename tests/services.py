"""Reach the servers that integration tests need, or skip them with the reason.

A test calls ``require_postgres()``, ``require_redis()`` or
``require_redis_server()`` (the binary, to start a Redis Cluster of its own;
usually from a fixture). When the server answers, it gets the connection details; when it
does not, the test is skipped, unless ``CHIRP_REQUIRE_SERVICES=1`` or
``CI=true`` is set, in which case it fails: where the services are meant to be
running, a missing one must not turn into a quietly green run.

Connection details come from the environment, with the defaults of a local
development server: ``POSTGRES_HOST`` (127.0.0.1), ``POSTGRES_PORT`` (5432),
``POSTGRES_DBNAME`` (test), ``POSTGRES_USER`` (``postgres``, then ``root``, when
unset), ``POSTGRES_PASSWORD`` (empty, for trust authentication); ``REDIS_URL``
(redis://127.0.0.1:6379/0). These are the names eventsourcing reads, too.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
from typing import NoReturn
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

CONNECT_TIMEOUT_SECONDS = 2
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# tests/redis_cluster.py needs cluster-port, CLUSTER ADDSLOTSRANGE and the bus port in MEET.
MIN_REDIS_SERVER = (7, 0)


def services_required() -> bool:
    """Whether a missing service fails the tests instead of skipping them."""
    return (
        os.environ.get("CHIRP_REQUIRE_SERVICES", "").strip() == "1"
        or os.environ.get("CI", "").strip().lower() == "true"
    )


def _unavailable(reason: str) -> NoReturn:
    if services_required():
        pytest.fail(f"{reason} (required because CHIRP_REQUIRE_SERVICES=1 or CI=true)")
    pytest.skip(reason)


def require_postgres() -> dict[str, str]:
    """Connection parameters of the PostgreSQL server (``dbname``, ``host``, ``port``,
    ``user``, ``password``, as ``PostgresDatastore`` takes them), or skip/fail."""
    params, failure = _probe_postgres(
        os.environ.get("POSTGRES_HOST", "127.0.0.1"),
        os.environ.get("POSTGRES_PORT", "5432"),
        os.environ.get("POSTGRES_DBNAME", "test"),
        os.environ.get("POSTGRES_USER", ""),
        os.environ.get("POSTGRES_PASSWORD", ""),
    )
    if params is None:
        _unavailable(failure)
    return dict(params)


# Probed once per process: an unreachable server would otherwise cost every
# test the full connection timeout.
@functools.cache
def _probe_postgres(
    host: str, port: str, dbname: str, user: str, password: str
) -> tuple[tuple[tuple[str, str], ...] | None, str]:
    errors: list[str] = []
    for candidate in [user] if user else ["postgres", "root"]:
        params = {
            "dbname": dbname,
            "host": host,
            "port": port,
            "user": candidate,
            "password": password,
        }
        try:
            conninfo = make_conninfo(**params, connect_timeout=CONNECT_TIMEOUT_SECONDS)
            with psycopg.connect(conninfo) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            message = " ".join(str(error).split()) or type(error).__name__
            errors.append(f"as {candidate!r}: {message}")
            if "role" not in message and "authentication" not in message:
                break  # not about who connects, so another user would fail alike
        else:
            return tuple(params.items()), ""
    return None, f"PostgreSQL at {host}:{port}/{dbname} is unreachable ({'; '.join(errors)})"


def require_redis() -> str:
    """The URL of the Redis server, or skip/fail."""
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    failure = _probe_redis(url)
    if failure:
        _unavailable(failure)
    return url


@functools.cache
def _probe_redis(url: str) -> str:
    """An empty string when something at ``url`` answers PING like Redis does,
    else why not. Any Redis reply counts, even an error such as ``-NOAUTH``:
    the server is there, and the URL's credentials are the client's business."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return f"REDIS_URL {url!r} is not a redis:// or rediss:// URL"
    host = parts.hostname or "127.0.0.1"
    try:
        port = parts.port or 6379
    except ValueError:
        return f"REDIS_URL {url!r} has an invalid port"
    where = f"Redis at {host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS) as sock:
            if parts.scheme == "rediss":
                return ""  # TLS: the TCP connection is as far as a raw socket can check
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as error:
        return f"{where} is unreachable ({error})"
    if reply[:1] not in (b"+", b"-"):
        return f"{where} did not answer PING like Redis (got {reply[:32]!r})"
    return ""


def require_redis_server() -> str:
    """The path of a ``redis-server`` binary (7.0 or newer) on PATH, to
    start a test Redis Cluster from, or skip/fail."""
    failure, path = _probe_redis_server()
    if failure:
        _unavailable(failure)
    return path


@functools.cache
def _probe_redis_server() -> tuple[str, str]:
    """(why not, or an empty string; the binary's path)."""
    path = shutil.which("redis-server")
    if path is None:
        return "redis-server is not on PATH (the Redis Cluster tests start a cluster from it)", ""
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{path} --version failed ({error})", ""
    found = re.search(r"v=(\d+)\.(\d+)", done.stdout)
    if found is None:
        return f"{path} --version did not say its version ({done.stdout.strip()!r})", ""
    version = (int(found[1]), int(found[2]))
    if version < MIN_REDIS_SERVER:
        wanted = ".".join(map(str, MIN_REDIS_SERVER))
        return f"{path} is Redis {found[1]}.{found[2]}; the cluster tests need {wanted}+", ""
    return "", path

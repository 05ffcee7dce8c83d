"""Several processes starting at the same moment on one store all come up.

Web servers, workers and CLI commands start together (a deploy, a restart):
each builds Chirp, which creates the stores' tables it needs. Here four
processes are released by one barrier on a fresh store, then four more on the
store they made; every one must build Chirp and write through it. Likewise
four ``manage.py migrate`` started together on a fresh database all succeed.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import traceback
import uuid
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from domain.errors import UserNotFound
from tests.postgres_schema import fresh_postgres_schema, postgres_url
from tests.services import require_postgres
from tests.web_server import ROOT, server_env

PROCESSES = 4
BARRIER_TIMEOUT_SECONDS = 120.0
JOIN_TIMEOUT_SECONDS = 180.0


def start_and_register(settings: Settings, username: str, barrier: Barrier) -> str:
    """Build Chirp the moment every process is ready, register ``username``;
    an empty string when that worked, else the traceback."""
    try:
        barrier.wait()
        chirp = build_chirp(settings)
        try:
            chirp.register(username)
        finally:
            chirp.close()
    except Exception:
        return traceback.format_exc()
    return ""


def _child(settings: Settings, username: str, barrier: Barrier, results: object) -> None:
    results.put((username, start_and_register(settings, username, barrier)))  # type: ignore[attr-defined]


def start_at_once(settings: Settings, usernames: list[str]) -> dict[str, str]:
    """Run ``start_and_register`` in a fresh process per name, all released
    together; each name's outcome."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(usernames), timeout=BARRIER_TIMEOUT_SECONDS)
    results = context.Queue()
    processes = [
        context.Process(target=_child, args=(settings, name, barrier, results))
        for name in usernames
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=JOIN_TIMEOUT_SECONDS) for _ in processes)
    for process in processes:
        process.join(timeout=JOIN_TIMEOUT_SECONDS)
    return outcomes


def registered(settings: Settings, usernames: list[str]) -> list[str]:
    """Which of ``usernames`` a new Chirp on ``settings`` knows."""
    chirp = build_chirp(settings)
    found = []
    try:
        chirp.sync()
        for name in usernames:
            try:
                found.append(chirp.queries.user(name).username)
            except UserNotFound:
                continue
    finally:
        chirp.close()
    return found


@pytest.fixture
def fresh_schema(tmp_path: Path) -> Iterator[Settings]:
    """Settings naming a new, empty PostgreSQL schema (dropped afterwards)."""
    with fresh_postgres_schema() as (params, schema):
        yield Settings(data_dir=tmp_path, database_url=postgres_url(params), postgres_schema=schema)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data")
    return request.getfixturevalue("fresh_schema")  # type: ignore[no-any-return]


def test_processes_starting_together_on_a_fresh_store_all_come_up(settings: Settings) -> None:
    names = [f"first{i}" for i in range(PROCESSES)]
    outcomes = start_at_once(settings, names)
    assert {name: error for name, error in outcomes.items() if error} == {}
    assert registered(settings, names) == names

    again = [f"again{i}" for i in range(PROCESSES)]
    outcomes = start_at_once(settings, again)
    assert {name: error for name, error in outcomes.items() if error} == {}
    assert registered(settings, again) == again


def migrate_at_once(env: dict[str, str]) -> list[tuple[int, str]]:
    """Start ``manage.py migrate`` in ``PROCESSES`` processes together; each
    one's exit status and output."""
    command = [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v0"]
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(PROCESSES)
    ]
    outcomes = []
    for process in processes:
        output, _ = process.communicate(timeout=JOIN_TIMEOUT_SECONDS)
        outcomes.append((process.returncode, output.decode()))
    return outcomes


# Every migration of the web app, by name, as django_migrations records them.
WEB_MIGRATIONS = sorted(
    (path.stem,) for path in (Path(__file__).parents[2] / "web" / "migrations").glob("0*.py")
)


def test_migrates_started_together_on_a_fresh_sqlite_database_all_succeed(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    outcomes = migrate_at_once(server_env(data_dir))
    assert [output for status, output in outcomes if status != 0] == []
    with sqlite3.connect(data_dir / "web.sqlite") as conn:
        applied = conn.execute("SELECT name FROM django_migrations WHERE app = 'web'").fetchall()
    assert sorted(applied) == WEB_MIGRATIONS  # each once


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (dropped afterwards)."""
    params = require_postgres()
    name = f"chirp_test_{uuid.uuid4().hex[:12]}"
    conninfo = psycopg.conninfo.make_conninfo(**params)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield (
            f"postgresql://{params['user']}:{params['password']}@{params['host']}:"
            f"{params['port']}/{name}"
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_migrates_started_together_on_a_fresh_postgres_database_all_succeed(
    fresh_database: str, tmp_path: Path
) -> None:
    outcomes = migrate_at_once(server_env(tmp_path, DATABASE_URL=fresh_database))
    assert [output for status, output in outcomes if status != 0] == []
    with psycopg.connect(fresh_database) as conn:
        applied = conn.execute("SELECT name FROM django_migrations WHERE app = 'web'").fetchall()
    assert sorted(applied) == WEB_MIGRATIONS  # each once

"""PostgreSQL going away in the middle of a command is a 503 "try again" page,
never a 500, and stores nothing of the command; a command that keeps losing
races to other writers is a 409 that says so.

The event store is reached through a proxy (tests/tcp_proxy.py) that the
tests cut: at the insert of the command's event, the database goes away.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import User
from django.test import Client
from eventsourcing.persistence import RecordConflictError
from psycopg import sql

from application.commands import CONFLICT_RETRIES
from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from tests.postgres_schema import fresh_postgres_schema
from tests.tcp_proxy import FaultyProxy
from web.runtime import use_chirp

# A post's text shows in the message inserting its event (its state, JSON).
TEXT = "written as the database went away"
# How long the pool may take to reconnect once the database is back.
RECONNECT_SECONDS = 30


@pytest.fixture
def postgres() -> Iterator[tuple[dict[str, str], str]]:
    with fresh_postgres_schema() as made:
        yield made


@pytest.fixture
def proxy(postgres: tuple[dict[str, str], str]) -> Iterator[FaultyProxy]:
    params, _ = postgres
    with FaultyProxy(params["host"], int(params["port"])) as running:
        yield running


@pytest.fixture
def chirp(
    db: None, tmp_path: Path, postgres: tuple[dict[str, str], str], proxy: FaultyProxy
) -> Iterator[Chirp]:
    """Chirp whose PostgreSQL is behind the proxy; a connection that cannot
    be had is given up after a second."""
    params, schema = postgres
    url = f"postgresql://{params['user']}:{params['password']}@127.0.0.1:{proxy.port}/{params['dbname']}"
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        postgres_schema=schema,
        extra_env={"POSTGRES_CONNECT_TIMEOUT": "1"},
    )
    instance = build_chirp(settings)
    previous = use_chirp(instance)
    yield instance
    use_chirp(previous)
    proxy.come_back()
    instance.close()


def stored_posts_with(postgres: tuple[dict[str, str], str], text: str) -> int:
    """Posts holding ``text`` in the event store, asked without the proxy."""
    params, schema = postgres
    conninfo = psycopg.conninfo.make_conninfo(**params)
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {} WHERE topic = %s AND position(%s in state) > 0"
            ).format(sql.Identifier(schema, "chirp_events")),
            ("chirp:TweetPosted", text.encode()),
        ).fetchone()
    assert row is not None
    return int(row[0])


def form_token(client: Client) -> str:
    found = re.search(r'name="token" value="([^"]+)"', client.get("/").content.decode())
    assert found is not None
    return found[1]


def send_until_done(client: Client, path: str, form: dict[str, str]) -> int:
    """Send ``form`` again while the answer is a 503, as a person told to try
    again would (the connection pool reconnects with a backoff of a few
    seconds); the first other status."""
    deadline = time.monotonic() + RECONNECT_SECONDS
    while True:
        status = client.post(path, form).status_code
        if status != 503 or time.monotonic() > deadline:
            return status


def test_a_post_as_the_database_goes_away_is_a_503_and_stores_nothing(
    client: Client,
    logged_in: Callable[[str], Client],
    chirp: Chirp,
    proxy: FaultyProxy,
    postgres: tuple[dict[str, str], str],
) -> None:
    client = logged_in("alice")
    token = form_token(client)
    proxy.cut_at(TEXT.encode(), then_go_away=True)

    response = client.post("/post", {"text": TEXT, "token": token})

    assert proxy.cuts == 1
    assert response.status_code == 503
    assert "try again" in response.content.decode()
    assert response["Retry-After"]
    assert stored_posts_with(postgres, TEXT) == 0

    proxy.come_back()  # the database is back: sending the form again posts once
    assert send_until_done(client, "/post", {"text": TEXT, "token": token}) == 302
    assert client.post("/post", {"text": TEXT, "token": token}).status_code == 302
    assert stored_posts_with(postgres, TEXT) == 1


def test_a_follow_when_the_database_is_out_of_reach_is_a_503(
    logged_in: Callable[[str], Client],
    person: Callable[..., User],
    chirp: Chirp,
    proxy: FaultyProxy,
) -> None:
    client = logged_in("alice")
    person("bob")
    chirp.commands.get_user("alice")  # alice is in the aggregate cache
    proxy.go_away()

    response = client.post("/@bob/follow")

    assert response.status_code == 503
    assert "try again" in response.content.decode()
    proxy.come_back()
    assert not chirp.commands.get_user("alice").follows("bob")


def test_a_command_that_keeps_losing_races_is_a_409_that_says_so(
    logged_in: Callable[[str], Client],
    person: Callable[..., User],
    chirp: Chirp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = logged_in("alice")
    person("bob")
    attempts: list[Any] = []

    def lose(*objs: Any, **kwargs: Any) -> Any:
        attempts.append(objs)
        raise RecordConflictError("another writer saved this aggregate first")

    monkeypatch.setattr(chirp.commands, "save", lose)
    response = client.post("/@bob/follow")

    assert response.status_code == 409
    assert "try again" in response.content.decode()
    assert len(attempts) == CONFLICT_RETRIES

"""A store still locked by another writer after its busy timeout is a 503
"try again" page, never a 500, and leaves nothing half-written."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import django.db
import pytest
from django.contrib.auth.models import User
from django.test import Client

from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from domain.errors import UserNotFound
from web.middleware import is_busy
from web.models import PendingRegistration
from web.runtime import use_chirp
from web.services import sign_up

PASSWORD = "a-long-test-password-42"


@pytest.fixture
def chirp(db: None, tmp_path: Path) -> Iterator[Chirp]:
    """Chirp on SQLite stores whose writers wait one second for a lock."""
    instance = build_chirp(Settings(data_dir=tmp_path, extra_env={"SQLITE_LOCK_TIMEOUT": "1"}))
    previous = use_chirp(instance)
    yield instance
    use_chirp(previous)
    instance.close()


@pytest.fixture
def locked_event_store(chirp: Chirp, tmp_path: Path) -> Iterator[Callable[[], None]]:
    """Another process holds the event store's write lock until the test
    calls the fixture's value (or ends)."""
    holder = sqlite3.connect(tmp_path / "events.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        if holder.in_transaction:
            holder.rollback()

    yield release
    release()
    holder.close()


def sign_up_form(username: str) -> dict[str, str]:
    return {"username": username, "password": PASSWORD, "password_again": PASSWORD}


def test_a_post_while_the_event_store_is_locked_is_busy_and_saves_nothing(
    client: Client, chirp: Chirp, request: pytest.FixtureRequest
) -> None:
    sign_up(chirp, "alice", PASSWORD)
    assert client.login(username="alice", password=PASSWORD)
    before = chirp.commands.recorder.max_notification_id()

    request.getfixturevalue("locked_event_store")
    response = client.post("/post", {"text": "hello while busy"})

    assert response.status_code == 503
    assert "try again" in response.content.decode()
    assert chirp.commands.recorder.max_notification_id() == before


def test_a_sign_up_while_the_event_store_is_locked_leaves_no_account(
    client: Client, chirp: Chirp, locked_event_store: Callable[[], None]
) -> None:
    response = client.post("/signup", sign_up_form("alice"))

    assert response.status_code == 503
    assert "try again" in response.content.decode()
    assert not User.objects.exists()
    assert not PendingRegistration.objects.exists()
    with pytest.raises(UserNotFound):
        chirp.commands.get_user("alice")

    locked_event_store()  # the other writer is done: trying again works
    assert client.post("/signup", sign_up_form("alice")).status_code == 302
    assert chirp.commands.get_user("alice").username == "alice"


def locked_error(path: Path) -> sqlite3.OperationalError:
    """The error SQLite raises when another connection holds the write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError) as raised:
            waiter.execute("BEGIN IMMEDIATE")
    finally:
        waiter.close()
        holder.rollback()
        holder.close()
    return raised.value


def test_django_errors_say_whether_sqlite_was_busy(tmp_path: Path) -> None:
    busy = locked_error(tmp_path / "busy.sqlite")
    # Django raises its own error from SQLite's, as its wrapper does.
    with pytest.raises(django.db.OperationalError) as wrapped:
        raise django.db.OperationalError(*busy.args) from busy
    assert is_busy(wrapped.value)

    missing = sqlite3.connect(tmp_path / "other.sqlite")
    with pytest.raises(sqlite3.OperationalError) as raised:
        missing.execute("SELECT * FROM no_such_table")
    missing.close()
    assert not is_busy(raised.value)  # a bug, not a busy store: a 500

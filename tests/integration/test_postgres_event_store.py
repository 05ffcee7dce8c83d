"""The event store's one-round-trip PostgreSQL recorder (adapters/postgres/event_store.py).

It reaches inside eventsourcing's recorder, so these tests pin what it relies
on: the wiring picks it, an insert stores all of a command's events or none
and returns their ids in order, it takes eventsourcing's table lock (so two
writers' ids never interleave), and an insert whose answer was lost is not
stored twice when it is tried again.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg import sql

from adapters.postgres.event_store import OneTripApplicationRecorder
from application.commands import ChirpApplication
from chirp.bootstrap import build_commands
from chirp.settings import Settings
from tests.postgres_schema import fresh_postgres_schema, postgres_url
from tests.tcp_proxy import FaultyProxy


@pytest.fixture
def schema() -> Iterator[tuple[dict[str, str], str]]:
    with fresh_postgres_schema() as made:
        yield made


def settings_for(params: dict[str, str], schema: str, tmp_path: Path, port: int = 0) -> Settings:
    url = postgres_url(params, port or None)
    return Settings(data_dir=tmp_path, database_url=url, postgres_schema=schema)


@pytest.fixture
def commands(schema: tuple[dict[str, str], str], tmp_path: Path) -> Iterator[ChirpApplication]:
    params, name = schema
    application = build_commands(settings_for(params, name, tmp_path))
    yield application
    application.close()


def recorder_of(application: ChirpApplication) -> OneTripApplicationRecorder:
    recorder = application.recorder
    assert isinstance(recorder, OneTripApplicationRecorder)
    return recorder


def events(originator: uuid.UUID, versions: range, state: bytes = b"{}") -> list[StoredEvent]:
    return [StoredEvent(originator, version, "test:Event", state) for version in versions]


def on_the_wire(state: bytes, count: int) -> bytes:
    """How an event's ``state`` shows in the message inserting ``count``
    events: a single event's as its bytes, several in an array of bytea,
    which psycopg sends as text (hexadecimal)."""
    return state if count == 1 else state.hex().encode()


def connect(params: dict[str, str]) -> psycopg.Connection[Any]:
    return psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True)


def test_the_wiring_chooses_it_and_a_command_gets_its_position(
    commands: ChirpApplication,
) -> None:
    recorder_of(commands)
    commands.register("alice")
    commands.post("alice", "hello")
    assert commands.last_saved_position() == 2 == commands.recorder.max_notification_id()


def test_an_insert_stores_all_its_events_or_none(commands: ChirpApplication) -> None:
    recorder = recorder_of(commands)
    first, second = uuid.uuid4(), uuid.uuid4()

    assert recorder.insert_events(events(first, range(1, 4))) == [1, 2, 3]
    with pytest.raises(IntegrityError):
        recorder.insert_events(events(second, range(1, 3)) + events(first, range(3, 4)))
    assert recorder.insert_events([]) == []

    stored = recorder.select_notifications(start=None, limit=10)
    assert [(n.originator_id, n.originator_version) for n in stored] == [
        (first, 1),
        (first, 2),
        (first, 3),
    ]
    later = recorder.insert_events(events(second, range(1, 2)))
    assert later is not None and later[0] > 3  # the refused insert stored nothing


@pytest.mark.parametrize("count", [1, 3])  # one function for one event, one for more
def test_an_insert_waits_for_the_table_lock(
    commands: ChirpApplication, schema: tuple[dict[str, str], str], count: int
) -> None:
    """Another transaction writing the table (as an insert does) holds a lock
    that eventsourcing's EXCLUSIVE lock waits for: the insert waits until it
    ends. Without the lock, it would go ahead."""
    params, name = schema
    recorder = recorder_of(commands)
    recorder.insert_events(events(uuid.uuid4(), range(1, 2)))
    table = sql.Identifier(name, recorder.events_table_name)
    done = threading.Event()
    with connect(params) as holder, connect(params) as watcher:
        holder.execute("BEGIN")
        holder.execute(sql.SQL("UPDATE {} SET topic = topic").format(table))

        def insert() -> None:
            recorder.insert_events(events(uuid.uuid4(), range(1, count + 1)))
            done.set()

        inserting = threading.Thread(target=insert)
        inserting.start()
        waiting = False
        for _ in range(500):  # the insert's session shows up waiting on the lock
            row = watcher.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND l.mode = 'ExclusiveLock' "
                "AND NOT l.granted",
                (name, recorder.events_table_name),
            ).fetchone()
            if row is not None and row[0] == 1:
                waiting = True
                break
            time.sleep(0.01)
        assert waiting
        assert not done.is_set()
        holder.execute("COMMIT")
        inserting.join(timeout=10)
    assert done.is_set()


def test_two_writers_ids_never_interleave(commands: ChirpApplication) -> None:
    recorder = recorder_of(commands)
    start = threading.Barrier(2)
    errors: list[BaseException] = []
    originators = [uuid.uuid4(), uuid.uuid4()]

    def write(originator: uuid.UUID) -> None:
        try:
            start.wait()
            recorder.insert_events(events(originator, range(1, 1001)))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(o,)) for o in originators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = recorder.select_notifications(start=None, limit=3000)
    ids = {o: [n.id for n in stored if n.originator_id == o] for o in originators}
    first, second = sorted(ids.values(), key=min)
    assert len(first) == len(second) == 1000
    assert max(first) < min(second)


def test_an_insert_cut_before_the_server_is_stored_by_the_next_attempt(
    schema: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    params, name = schema
    with FaultyProxy(params["host"], int(params["port"])) as proxy:
        application = build_commands(settings_for(params, name, tmp_path, proxy.port))
        try:
            recorder = recorder_of(application)
            proxy.cut_at(on_the_wire(b"cut here", 2))  # the message carrying the events
            originator = uuid.uuid4()
            ids = recorder.insert_events(events(originator, range(1, 3), b"cut here"))
            assert proxy.cuts == 1
            stored = recorder.select_notifications(start=None, limit=10)
            assert ids == [n.id for n in stored] and len(ids) == 2
        finally:
            application.close()


@pytest.mark.parametrize("count", [1, 2])
def test_an_insert_whose_answer_was_lost_is_stored_once(
    schema: tuple[dict[str, str], str], tmp_path: Path, count: int
) -> None:
    """The connection breaks after the server stored the events and before
    its answer arrives: the insert is tried again on a new connection, finds
    these very events stored, and returns their ids."""
    params, name = schema
    with FaultyProxy(params["host"], int(params["port"])) as proxy:
        application = build_commands(settings_for(params, name, tmp_path, proxy.port))
        try:
            recorder = recorder_of(application)
            proxy.cut_at(on_the_wire(b"answer lost", count), deliver=True)
            originator = uuid.uuid4()
            ids = recorder.insert_events(events(originator, range(1, count + 1), b"answer lost"))
            assert proxy.cuts == 1
            stored = recorder.select_notifications(start=None, limit=10)
            assert ids == [n.id for n in stored if n.originator_id == originator]
            assert len(ids) == count
            # Stored by someone else (other contents): a conflict, as ever.
            with pytest.raises(IntegrityError):
                recorder.insert_events(events(originator, range(count, count + 1), b"other"))
        finally:
            application.close()

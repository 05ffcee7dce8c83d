"""The event store and catalog persist across processes, on SQLite and PostgreSQL.

A first Chirp writes; it is closed; a second Chirp on the same settings (a new
process) starts with empty in-memory feeds, rebuilds them from the stored log,
and must show exactly what the first one showed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from domain.errors import UsernameTaken
from tests.postgres_schema import fresh_postgres_schema, postgres_url
from tests.services import require_postgres


@pytest.fixture
def postgres_settings(tmp_path: Path) -> Iterator[Settings]:
    with fresh_postgres_schema() as (params, schema):
        yield Settings(data_dir=tmp_path, database_url=postgres_url(params), postgres_schema=schema)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path)
    return request.getfixturevalue("postgres_settings")  # type: ignore[no-any-return]


def snapshot(chirp: Chirp) -> dict[str, list[str]]:
    q = chirp.queries
    return {
        "alice": [i.text for i in q.profile_feed("alice").items],
        "home bob": [i.text for i in q.home_timeline("bob").items],
        "mentions bob": [i.text for i in q.mentions("bob").items],
        "#chirp": [i.text for i in q.hashtag("chirp").items],
        "bob follows": [str(q.user("bob").following_count)],
    }


def test_a_new_process_sees_what_the_first_one_wrote(settings: Settings) -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    first = build_chirp(settings)
    first.register("alice")
    first.register("bob")
    first.follow("bob", "alice")
    doomed = first.post("alice", "first #chirp", start)
    first.post("alice", "hello @bob #Chirp", start + timedelta(minutes=1))
    first.post("bob", "hi all", start + timedelta(minutes=2))
    first.delete_post(doomed, "alice")
    before = snapshot(first)
    first.close()

    second = build_chirp(settings)
    try:
        second.sync()
        assert snapshot(second) == before
        assert before["home bob"] == ["hi all", "hello @bob #Chirp"]
        with pytest.raises(UsernameTaken):
            second.register("ALICE")
    finally:
        second.close()


def test_the_sqlite_store_lives_in_the_data_directory(tmp_path: Path) -> None:
    chirp = build_chirp(Settings(data_dir=tmp_path / "data"))
    try:
        chirp.register("alice")
    finally:
        chirp.close()
    assert (tmp_path / "data" / "events.sqlite").stat().st_size > 0
    assert (tmp_path / "data" / "catalog.sqlite").stat().st_size > 0


def test_postgres_keeps_events_and_catalog_in_the_configured_schema(
    postgres_settings: Settings,
) -> None:
    chirp = build_chirp(postgres_settings)
    try:
        chirp.register("alice")
    finally:
        chirp.close()
    params = require_postgres()
    with psycopg.connect(psycopg.conninfo.make_conninfo(**params)) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (postgres_settings.postgres_schema,),
            )
        }
        [(events,)] = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.chirp_events").format(
                sql.Identifier(postgres_settings.postgres_schema)
            )
        ).fetchall()
    assert "chirp_events" in tables
    assert any(name.startswith("chirp_catalog_") for name in tables)
    assert events == 1


def test_a_post_resent_to_another_process_is_stored_once(settings: Settings) -> None:
    key = uuid.uuid4()
    first = build_chirp(settings)
    second = build_chirp(settings)
    try:
        first.register("alice")
        post_id = first.post("alice", "sent twice", key=key)
        assert second.post("alice", "sent twice", key=key) == post_id
        second.sync()
        assert [item.text for item in second.queries.profile_feed("alice").items] == ["sent twice"]
        assert second.commands.recorder.max_notification_id() == 2  # registered, posted
    finally:
        second.close()
        first.close()

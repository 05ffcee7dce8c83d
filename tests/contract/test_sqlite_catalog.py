"""The catalog contract, run against the SQLite adapter on a temporary file,
plus what only SQLite shows: persistence across connections and query counts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore

from adapters.sqlite.catalog import LOOKUP_CHUNK_SIZE, SQLiteCatalog
from application.catalog import Catalog
from tests.contract.catalog_contract import APP, CatalogContract, post, user


class TestSQLiteCatalog(CatalogContract):
    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> Iterator[None]:
        self.db_path = tmp_path / "catalog.sqlite"
        self.datastores: list[SQLiteDatastore] = []
        yield
        for datastore in self.datastores:
            datastore.close()

    def make_catalog(self) -> Catalog:
        return self.open_catalog()

    def open_catalog(self) -> SQLiteCatalog:
        datastore = SQLiteDatastore(str(self.db_path))
        self.datastores.append(datastore)
        catalog = SQLiteCatalog(datastore)
        catalog.create_table()
        return catalog

    def test_the_catalog_persists_across_datastores_and_create_table_is_idempotent(
        self,
    ) -> None:
        first = self.open_catalog()
        hello = post("alice")
        first.add_user(user("Alice"), Tracking(APP, 1))
        first.add_post(hello, Tracking(APP, 2))

        second = self.open_catalog()
        second.create_table()
        assert second.users(["alice"]) == {"alice": user("Alice", posts_count=1)}
        assert second.posts([hello.id]) == {hello.id: hello}
        assert second.max_tracking_id(APP) == 2

    def test_tables_and_tracking_share_the_file(self) -> None:
        self.open_catalog()
        with sqlite3.connect(self.db_path) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"catalog_users", "catalog_posts", "tracking"} <= tables

    def test_a_naive_datetime_is_taken_as_utc(self) -> None:
        catalog = self.open_catalog()
        naive = post("alice", posted_at=datetime(2024, 5, 6, 7, 8, 9, 10))
        catalog.add_post(naive, Tracking(APP, 1))
        back = catalog.posts([naive.id])[naive.id]
        assert back.posted_at == datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)

    def test_batch_lookups_take_one_query_per_chunk(self, monkeypatch: pytest.MonkeyPatch) -> None:
        catalog = self.open_catalog()
        selects: list[str] = []
        execute = SQLiteCursor.execute

        def counting_execute(cursor: SQLiteCursor, *args: Any, **kwargs: Any) -> None:
            if str(args[0]).lstrip().upper().startswith("SELECT"):
                selects.append(args[0])
            execute(cursor, *args, **kwargs)

        monkeypatch.setattr(SQLiteCursor, "execute", counting_execute)
        catalog.posts([uuid4() for _ in range(LOOKUP_CHUNK_SIZE)])
        catalog.users([f"user{n}" for n in range(LOOKUP_CHUNK_SIZE)])
        assert len(selects) == 2
        selects.clear()
        catalog.posts([uuid4() for _ in range(2 * LOOKUP_CHUNK_SIZE + 1)])
        assert len(selects) == 3

    def test_a_write_failing_midway_leaves_neither_rows_nor_position(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        catalog = self.open_catalog()
        catalog.add_user(user("alice"), Tracking(APP, 1))
        catalog.add_user(user("bob"), Tracking(APP, 2))
        execute = SQLiteCursor.execute

        def failing_execute(cursor: SQLiteCursor, *args: Any, **kwargs: Any) -> None:
            if "followers_count = followers_count" in str(args[0]):
                raise RuntimeError("the disk went away")
            execute(cursor, *args, **kwargs)

        monkeypatch.setattr(SQLiteCursor, "execute", failing_execute)
        with pytest.raises(RuntimeError):
            catalog.record_follow("alice", "bob", +1, Tracking(APP, 3))
        monkeypatch.undo()

        assert catalog.max_tracking_id(APP) == 2
        assert catalog.users(["alice", "bob"]) == {"alice": user("alice"), "bob": user("bob")}

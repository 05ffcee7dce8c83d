"""The catalog contract, run against the SQLite adapter on a temporary file,
plus what only SQLite shows: persistence across connections, query counts and
query plans, atomicity."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore

from adapters.sqlite.catalog import LOOKUP_CHUNK_SIZE, SQLiteCatalog
from application.catalog import Catalog
from tests.contract.catalog_contract import (
    APP,
    DAY_AGO,
    NOW,
    CatalogContract,
    post,
    tagged,
    trending,
    user,
)


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
        assert {
            "catalog_users",
            "catalog_posts",
            "catalog_hashtag_hours",
            "catalog_users_by_followers",
            "tracking",
        } <= tables

    def test_trending_reads_a_range_of_recent_hour_buckets(self) -> None:
        catalog = self.open_catalog()
        for n in range(200):  # over eight days, five tags an hour
            at = NOW - timedelta(hours=n)
            catalog.add_post(
                tagged("a", *(f"t{k}" for k in range(5)), posted_at=at), Tracking(APP, n + 1)
            )
        plan = self.query_plan(lambda: catalog.trending_hashtags(DAY_AGO))
        assert "SEARCH catalog_hashtag_hours USING PRIMARY KEY (hour>?)" in plan
        assert not any(step.startswith("SCAN") for step in plan)
        assert trending(catalog, limit=2) == {"t0": 25, "t1": 25}
        with sqlite3.connect(self.db_path) as conn:
            (rows,) = conn.execute("SELECT COUNT(*) FROM catalog_hashtag_hours").fetchone()
        assert rows == 200 * 5  # one counter per hour and tag, not per post

    def test_popular_users_are_read_in_index_order(self) -> None:
        catalog = self.open_catalog()
        for n in range(50):
            catalog.add_user(user(f"user{n}", followers_count=n % 7), Tracking(APP, n + 1))
        plan = self.query_plan(lambda: catalog.popular_users(5, ["user6"]))
        assert "SCAN catalog_users USING INDEX catalog_users_by_followers" in plan
        assert not any("TEMP B-TREE" in step for step in plan)  # no sort of the table

    def query_plan(self, run: Callable[[], object]) -> list[str]:
        """The SQLite query plan of the one SELECT that calling ``run`` executes."""
        selects: list[tuple[Any, ...]] = []
        execute = SQLiteCursor.execute

        def recording_execute(cursor: SQLiteCursor, *args: Any, **kwargs: Any) -> None:
            if str(args[0]).lstrip().upper().startswith("SELECT"):
                selects.append(args)
            execute(cursor, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(SQLiteCursor, "execute", recording_execute)
            run()
        assert len(selects) == 1
        statement, params = selects[0]
        with sqlite3.connect(self.db_path) as conn:
            rows = conn.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
        return [row[3] for row in rows]

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

    def test_a_post_whose_counters_fail_leaves_neither_post_nor_position(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        catalog = self.open_catalog()
        catalog.add_user(user("alice"), Tracking(APP, 1))
        hello = tagged("alice", "python", "rust")
        execute = SQLiteCursor.execute

        def failing_execute(cursor: SQLiteCursor, *args: Any, **kwargs: Any) -> None:
            if "'rust'" in repr(args[1:]) and "catalog_hashtag_hours" in str(args[0]):
                raise RuntimeError("the disk went away")
            execute(cursor, *args, **kwargs)

        monkeypatch.setattr(SQLiteCursor, "execute", failing_execute)
        with pytest.raises(RuntimeError):
            catalog.add_post(hello, Tracking(APP, 2))
        monkeypatch.undo()

        assert catalog.max_tracking_id(APP) == 1
        assert catalog.posts([hello.id]) == {}
        assert catalog.users(["alice"]) == {"alice": user("alice")}
        assert trending(catalog) == {}  # not even the tag counted before the failure

"""The catalog contract, run against the PostgreSQL adapter on the real server,
plus what only PostgreSQL shows: table naming, query counts and plans, atomicity.

Each run works in a schema of its own, dropped at the end, and each test in
tables of its own prefix, so runs and tests never see each other's rows. The
tests skip when the server is unreachable, and fail instead under
``CHIRP_REQUIRE_SERVICES=1`` or ``CI=true`` (see ``tests/services.py``).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from adapters.postgres.catalog import DEFAULT_TABLE_PREFIX, PostgresCatalog
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
from tests.services import require_postgres

pytestmark = pytest.mark.postgres

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def postgres_schema() -> Iterator[tuple[dict[str, str], str]]:
    """The server's connection parameters and a fresh schema, dropped afterwards."""
    params = require_postgres()
    schema = f"chirp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**params, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield params, schema
    finally:
        with psycopg.connect(**params, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


class TestPostgresCatalog(CatalogContract):
    @pytest.fixture(autouse=True)
    def _database(self, postgres_schema: tuple[dict[str, str], str]) -> Iterator[None]:
        self.params, self.schema = postgres_schema
        self.prefix = f"t{next(_prefixes)}_"
        self.datastores: list[PostgresDatastore] = []
        yield
        for datastore in self.datastores:
            datastore.close()

    def make_catalog(self) -> Catalog:
        return self.open_catalog()

    def open_catalog(self, table_prefix: str | None = None) -> PostgresCatalog:
        datastore = PostgresDatastore(**self.params, schema=self.schema)  # type: ignore[arg-type]
        self.datastores.append(datastore)
        catalog = PostgresCatalog(
            datastore, table_prefix=self.prefix if table_prefix is None else table_prefix
        )
        catalog.create_table()
        return catalog

    def tables(self) -> set[str]:
        with psycopg.connect(**self.params) as conn:  # type: ignore[arg-type]
            rows = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (self.schema,),
            ).fetchall()
        return {row[0] for row in rows}

    def test_tables_are_named_with_the_prefix_in_the_datastores_schema(self) -> None:
        self.open_catalog()
        self.open_catalog(table_prefix=DEFAULT_TABLE_PREFIX)
        tables = self.tables()
        for prefix in (self.prefix, DEFAULT_TABLE_PREFIX):
            assert {
                f"{prefix}users",
                f"{prefix}posts",
                f"{prefix}hashtag_hours",
                f"{prefix}tracking",
            } <= tables

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

    def test_batch_lookups_take_one_query_each(self, monkeypatch: pytest.MonkeyPatch) -> None:
        catalog = self.open_catalog()
        selects = count_selects(monkeypatch)
        catalog.posts([uuid.uuid4() for _ in range(1_500)])
        assert len(selects) == 1
        catalog.users([f"user{n}" for n in range(1_500)])
        assert len(selects) == 2

    def test_ranked_reads_take_one_query_each_over_an_index(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        catalog = self.open_catalog()
        position = iter(range(1, 1_000_000))
        for n in range(200):  # over eight days, five tags an hour
            at = NOW - timedelta(hours=n)
            tags = (f"t{k}" for k in range(5))
            catalog.add_post(tagged("a", *tags, posted_at=at), Tracking(APP, next(position)))
        for n in range(50):
            named = user(f"user{n}", followers_count=n % 7)
            catalog.add_user(named, Tracking(APP, next(position)))

        trending_plan = self.query_plan(monkeypatch, lambda: catalog.trending_hashtags(DAY_AGO))
        assert f"{self.prefix}hashtag_hours_pkey" in trending_plan
        assert "Seq Scan" not in trending_plan
        popular_plan = self.query_plan(monkeypatch, lambda: catalog.popular_users(5, ["user6"]))
        assert f"Index Scan using {self.prefix}users_by_followers" in popular_plan
        assert "Sort" not in popular_plan  # read in index order, stopping at the limit

        assert trending(catalog, limit=2) == {"t0": 25, "t1": 25}
        assert [u.username for u in catalog.popular_users(3, ["USER6"])] == [
            "user13",
            "user20",
            "user27",
        ]

    def query_plan(self, monkeypatch: pytest.MonkeyPatch, run: Callable[[], object]) -> str:
        """The plan of the one SELECT that calling ``run`` executes, with
        sequential scans priced out, as they would be on a table of any size."""
        selects: list[tuple[str, Any]] = []
        execute = psycopg.Cursor.execute

        def recording_execute(
            cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any
        ) -> Any:
            text = _text(query)
            if text.lstrip().upper().startswith("SELECT"):
                selects.append((text, args[0] if args else None))
            return execute(cursor, query, *args, **kw)

        with monkeypatch.context() as patch:
            patch.setattr(psycopg.Cursor, "execute", recording_execute)
            run()
        assert len(selects) == 1
        statement, params = selects[0]
        with psycopg.connect(**self.params) as conn:  # type: ignore[arg-type]
            conn.execute("SET enable_seqscan = off")
            rows = conn.execute(sql.SQL("EXPLAIN ") + sql.SQL(statement), params).fetchall()
        return "\n".join(row[0] for row in rows)

    def test_a_post_whose_counters_fail_leaves_neither_post_nor_position(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        catalog = self.open_catalog()
        catalog.add_user(user("alice"), Tracking(APP, 1))
        hello = tagged("alice", "python", "rust")
        execute = psycopg.Cursor.execute

        def failing_execute(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
            if "hashtag_hours" in _text(query) and _text(query).startswith("INSERT"):
                raise RuntimeError("the server went away")
            return execute(cursor, query, *args, **kw)

        monkeypatch.setattr(psycopg.Cursor, "execute", failing_execute)
        with pytest.raises(RuntimeError):
            catalog.add_post(hello, Tracking(APP, 2))
        monkeypatch.undo()

        assert catalog.max_tracking_id(APP) == 1
        assert catalog.posts([hello.id]) == {}
        assert catalog.users(["alice"]) == {"alice": user("alice")}
        assert trending(catalog) == {}

    def test_a_write_failing_midway_leaves_neither_rows_nor_position(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        catalog = self.open_catalog()
        catalog.add_user(user("alice"), Tracking(APP, 1))
        catalog.add_user(user("bob"), Tracking(APP, 2))
        execute = psycopg.Cursor.execute

        def failing_execute(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
            if "followers_count = followers_count" in _text(query):
                raise RuntimeError("the server went away")
            return execute(cursor, query, *args, **kw)

        monkeypatch.setattr(psycopg.Cursor, "execute", failing_execute)
        with pytest.raises(RuntimeError):
            catalog.record_follow("alice", "bob", +1, Tracking(APP, 3))
        monkeypatch.undo()

        assert catalog.max_tracking_id(APP) == 2
        assert catalog.users(["alice", "bob"]) == {"alice": user("alice"), "bob": user("bob")}


def _text(query: Any) -> str:
    return query.as_string() if isinstance(query, sql.Composable) else str(query)


def count_selects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each SELECT that psycopg cursors run from now on."""
    selects: list[str] = []
    execute = psycopg.Cursor.execute

    def counting_execute(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
        text = _text(query)
        if text.lstrip().upper().startswith("SELECT"):
            selects.append(text)
        return execute(cursor, query, *args, **kw)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting_execute)
    return selects

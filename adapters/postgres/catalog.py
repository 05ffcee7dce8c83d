"""PostgresCatalog: the catalog read model in PostgreSQL, written exactly once per event.

Each write records the event's ``Tracking`` first, in the same transaction as
its rows, using eventsourcing's single-row tracking table: a position already
passed makes the tracking insert raise ``IntegrityError``, which rolls the
whole transaction back. Recording the position first also makes concurrent
writers queue on the tracking row's lock before they touch any catalog row, so
they cannot deadlock on user rows.

Tables live in the datastore's schema and share a prefix (``chirp_catalog_``
by default): ``<prefix>users``, ``<prefix>posts``, ``<prefix>hashtag_hours`` and
``<prefix>tracking``. The catalog keeps its own tracking table because a
position is per projection: a tracking table shared with another projection of
the same application would make each reject the other's positions.

Trending hashtags are counted per UTC hour in ``<prefix>hashtag_hours``, keyed
``(hour, tag)`` so a window of recent hours is a range of its primary key; a
counter that falls to zero is deleted. Popular users are read through the index
``<prefix>users_by_followers`` on ``(followers_count DESC, username_key)``, in its
order, stopping at the limit. Tags and username keys are ordered by code point
(``COLLATE "C"``), as the other adapters order them, whatever the database's
collation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier
from psycopg.types.json import Jsonb

from application.catalog import (
    AuthoredPost,
    Catalog,
    PostView,
    TrendingTag,
    UserView,
    as_utc,
    hour_bucket,
)
from domain.tweet import TextEntity, hashtags_of
from domain.user import username_key

DEFAULT_TABLE_PREFIX = "chirp_catalog_"


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already (never the
    session's time zone, which is what PostgreSQL would assume)."""
    return as_utc(moment)


def _sorted_tags(entities: Iterable[TextEntity]) -> list[str]:
    """A post's distinct normalised tags, sorted so that concurrent writers lock
    counter rows in one order."""
    return sorted(hashtags_of(list(entities)))


def _user_view(row: DictRow) -> UserView:
    return UserView(
        username=row["username"],
        display_name=row["display_name"],
        bio=row["bio"],
        registered_at=_utc(row["registered_at"]),
        followers_count=row["followers_count"],
        following_count=row["following_count"],
        posts_count=row["posts_count"],
    )


def _post_view(row: DictRow) -> PostView:
    return PostView(
        id=row["post_id"],
        author=row["author"],
        text=row["text"],
        posted_at=_utc(row["posted_at"]),
        entities=tuple(TextEntity.from_dict(data) for data in row["entities"]),
    )


class PostgresCatalog(PostgresTrackingRecorder, Catalog):
    """Users, live posts and hourly hashtag counters in ``<prefix>users``,
    ``<prefix>posts`` and ``<prefix>hashtag_hours``. Call :meth:`create_table`
    once before use."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        table_prefix: str = DEFAULT_TABLE_PREFIX,
        tracking_table_name: str | None = None,
    ) -> None:
        super().__init__(
            datastore, tracking_table_name=tracking_table_name or f"{table_prefix}tracking"
        )
        users_table = f"{table_prefix}users"
        posts_table = f"{table_prefix}posts"
        hashtags_table = f"{table_prefix}hashtag_hours"
        followers_index = f"{table_prefix}users_by_followers"
        for name in (users_table, posts_table, hashtags_table, followers_index):
            self.check_identifier_length(name)
        self.users_table_name = users_table
        self.posts_table_name = posts_table
        self.hashtags_table_name = hashtags_table
        schema = Identifier(self.datastore.schema)
        names = {
            "users": Identifier(users_table),
            "posts": Identifier(posts_table),
            "hashtags": Identifier(hashtags_table),
            "followers_index": Identifier(followers_index),
        }

        def statement(text: str) -> Composed:
            return SQL(text).format(schema=schema, **names)

        self.sql_create_statements += [
            statement(
                "CREATE TABLE IF NOT EXISTS {schema}.{users} ("
                "username_key text PRIMARY KEY, "
                "username text NOT NULL, "
                "display_name text NOT NULL, "
                "bio text NOT NULL, "
                "registered_at timestamptz NOT NULL, "
                "followers_count bigint NOT NULL DEFAULT 0, "
                "following_count bigint NOT NULL DEFAULT 0, "
                "posts_count bigint NOT NULL DEFAULT 0)"
            ),
            # Every lookup is by primary key, so no secondary index is needed
            # (yet): add one on (author_key, posted_at) for per-author queries.
            statement(
                "CREATE TABLE IF NOT EXISTS {schema}.{posts} ("
                "post_id uuid PRIMARY KEY, "
                "author text NOT NULL, "
                "author_key text NOT NULL, "
                "text text NOT NULL, "
                "posted_at timestamptz NOT NULL, "
                "entities jsonb NOT NULL)"
            ),
            # Who to follow: read in this order, so LIMIT stops early.
            statement(
                "CREATE INDEX IF NOT EXISTS {followers_index} ON {schema}.{users} "
                '(followers_count DESC, username_key COLLATE "C")'
            ),
            # Live posts per (UTC hour, normalised tag); only positive counts are kept.
            statement(
                "CREATE TABLE IF NOT EXISTS {schema}.{hashtags} ("
                "hour timestamptz NOT NULL, "
                'tag text COLLATE "C" NOT NULL, '
                "posts bigint NOT NULL, "
                "PRIMARY KEY (hour, tag))"
            ),
        ]
        user_columns = (
            "username, display_name, bio, registered_at, "
            "followers_count, following_count, posts_count"
        )
        self.upsert_user_statement = statement(
            "INSERT INTO {schema}.{users} (username_key, " + user_columns + ") "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (username_key) DO UPDATE SET "
            "username = EXCLUDED.username, "
            "display_name = EXCLUDED.display_name, "
            "bio = EXCLUDED.bio, "
            "registered_at = EXCLUDED.registered_at, "
            "followers_count = EXCLUDED.followers_count, "
            "following_count = EXCLUDED.following_count, "
            "posts_count = EXCLUDED.posts_count"
        )
        self.update_profile_statement = statement(
            "UPDATE {schema}.{users} SET display_name = %s, bio = %s WHERE username_key = %s"
        )
        self.adjust_following_statement = statement(
            "UPDATE {schema}.{users} SET following_count = following_count + %s "
            "WHERE username_key = %s"
        )
        self.adjust_followers_statement = statement(
            "UPDATE {schema}.{users} SET followers_count = followers_count + %s "
            "WHERE username_key = %s"
        )
        self.adjust_posts_count_statement = statement(
            "UPDATE {schema}.{users} SET posts_count = posts_count + %s WHERE username_key = %s"
        )
        self.insert_post_statement = statement(
            "INSERT INTO {schema}.{posts} "
            "(post_id, author, author_key, text, posted_at, entities) "
            "VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (post_id) DO NOTHING RETURNING post_id"
        )
        self.delete_post_statement = statement(
            "DELETE FROM {schema}.{posts} WHERE post_id = %s "
            "RETURNING author_key, posted_at, entities"
        )
        self.count_hashtags_statement = statement(
            "INSERT INTO {schema}.{hashtags} AS counter (hour, tag, posts) "
            "SELECT %s, tag, 1 FROM unnest(%s::text[]) WITH ORDINALITY AS t(tag, n) ORDER BY n "
            "ON CONFLICT (hour, tag) DO UPDATE SET posts = counter.posts + 1"
        )
        self.uncount_hashtags_statement = statement(
            "UPDATE {schema}.{hashtags} SET posts = posts - 1 WHERE hour = %s AND tag = ANY(%s)"
        )
        self.delete_empty_hashtags_statement = statement(
            "DELETE FROM {schema}.{hashtags} WHERE hour = %s AND tag = ANY(%s) AND posts <= 0"
        )
        self.trending_statement = statement(
            "SELECT tag, SUM(posts) AS total FROM {schema}.{hashtags} "
            "WHERE hour >= %s GROUP BY tag HAVING SUM(posts) > 0 "
            "ORDER BY total DESC, tag LIMIT %s"
        )
        self.popular_users_statement = statement(
            "SELECT " + user_columns + " FROM {schema}.{users} "
            "WHERE username_key <> ALL(%s) "
            'ORDER BY followers_count DESC, username_key COLLATE "C" LIMIT %s'
        )
        self.select_users_statement = statement(
            "SELECT username_key, " + user_columns + " FROM {schema}.{users} "
            "WHERE username_key = ANY(%s)"
        )
        self.select_posts_statement = statement(
            "SELECT post_id, author, text, posted_at, entities FROM {schema}.{posts} "
            "WHERE post_id = ANY(%s)"
        )
        # A post and its author, if known: the user columns are NULL when not.
        # LATERAL ... LIMIT 1 keeps the planner on one primary-key probe per
        # post; a plain join may hash the whole users table instead.
        self.select_posts_with_authors_statement = statement(
            "SELECT p.post_id, p.author, p.text, p.posted_at, p.entities::text, u.username_key, "
            "u.username, u.display_name, u.bio, u.registered_at, "
            "u.followers_count, u.following_count, u.posts_count "
            "FROM {schema}.{posts} p LEFT JOIN LATERAL ("
            "SELECT * FROM {schema}.{users} a WHERE a.username_key = p.author_key LIMIT 1"
            ") u ON true "
            "WHERE p.post_id = ANY(%s)"
        )
        self._posts_with_authors_query = self.select_posts_with_authors_statement.as_bytes()

    # -- writes: each one transaction with its tracking record ---------------

    def add_user(self, user: UserView, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)
            curs.execute(
                self.upsert_user_statement,
                (
                    username_key(user.username),
                    user.username,
                    user.display_name,
                    user.bio,
                    _utc(user.registered_at),
                    user.followers_count,
                    user.following_count,
                    user.posts_count,
                ),
            )

    def update_profile(
        self, username: str, display_name: str, bio: str, tracking: Tracking
    ) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)
            curs.execute(self.update_profile_statement, (display_name, bio, username_key(username)))

    def record_follow(self, follower: str, followee: str, delta: int, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)
            curs.execute(self.adjust_following_statement, (delta, username_key(follower)))
            curs.execute(self.adjust_followers_statement, (delta, username_key(followee)))

    def add_post(self, post: PostView, tracking: Tracking) -> None:
        author_key = username_key(post.author)
        entities = [entity.as_dict() for entity in post.entities]
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)
            curs.execute(
                self.insert_post_statement,
                (
                    post.id,
                    post.author,
                    author_key,
                    post.text,
                    _utc(post.posted_at),
                    Jsonb(entities),
                ),
            )
            if curs.fetchone() is not None:  # a post already known is not counted twice
                curs.execute(self.adjust_posts_count_statement, (1, author_key))
                tags = _sorted_tags(post.entities)
                if tags:
                    hour = hour_bucket(post.posted_at)
                    curs.execute(self.count_hashtags_statement, (hour, tags))

    def remove_post(self, post_id: UUID, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)
            curs.execute(self.delete_post_statement, (post_id,))
            row = curs.fetchone()
            if row is not None:
                curs.execute(self.adjust_posts_count_statement, (-1, row["author_key"]))
                tags = _sorted_tags(TextEntity.from_dict(data) for data in row["entities"])
                if tags:
                    hour = hour_bucket(row["posted_at"])
                    curs.execute(self.uncount_hashtags_statement, (hour, tags))
                    curs.execute(self.delete_empty_hashtags_statement, (hour, tags))

    # -- batch reads: one query each, whatever the number of keys ------------

    def close(self) -> None:
        self.datastore.close()

    def users(self, usernames: Iterable[str]) -> dict[str, UserView]:
        keys = list({username_key(name) for name in usernames})
        if not keys:
            return {}
        rows = self._select(self.select_users_statement, keys)
        return {row["username_key"]: _user_view(row) for row in rows}

    def posts(self, post_ids: Iterable[UUID]) -> dict[UUID, PostView]:
        keys = list(set(post_ids))
        if not keys:
            return {}
        rows = self._select(self.select_posts_statement, keys)
        return {row["post_id"]: _post_view(row) for row in rows}

    def posts_with_authors(self, post_ids: Iterable[UUID]) -> dict[UUID, AuthoredPost]:
        keys = list(set(post_ids))
        if not keys:
            return {}
        # The hot path of every page: plain tuples, a prepared statement, and
        # the entities of all the rows parsed as one JSON document.
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as curs,
        ):
            curs.execute(self._posts_with_authors_query, (keys,), prepare=True)
            rows = curs.fetchall()
        entities = json.loads("[" + ",".join(row[4] for row in rows) + "]")
        found: dict[UUID, AuthoredPost] = {}
        authors: dict[str, UserView] = {}  # each author's view built once
        for row, post_entities in zip(rows, entities, strict=True):
            post_id, author, text, posted_at, _, key = row[:6]
            if key is not None and key not in authors:  # key is NULL for an unknown author
                authors[key] = UserView(
                    username=row[6],
                    display_name=row[7],
                    bio=row[8],
                    registered_at=_utc(row[9]),
                    followers_count=row[10],
                    following_count=row[11],
                    posts_count=row[12],
                )
            post = PostView(
                id=post_id,
                author=author,
                text=text,
                posted_at=_utc(posted_at),
                entities=tuple(TextEntity.from_dict(data) for data in post_entities),
            )
            found[post_id] = AuthoredPost(post, authors.get(key))
        return found

    # -- ranked reads: each one query over an index, stopping at the limit ---

    def trending_hashtags(self, since: datetime, limit: int = 10) -> list[TrendingTag]:
        if limit <= 0:
            return []
        rows = self._select(self.trending_statement, hour_bucket(since), limit)
        return [TrendingTag(row["tag"], int(row["total"])) for row in rows]

    def popular_users(self, limit: int = 10, exclude: Iterable[str] = ()) -> list[UserView]:
        if limit <= 0:
            return []
        excluded = sorted({username_key(name) for name in exclude})
        rows = self._select(self.popular_users_statement, excluded, limit)
        return [_user_view(row) for row in rows]

    def _select(self, statement: Composed, *params: Any) -> list[DictRow]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return curs.fetchall()

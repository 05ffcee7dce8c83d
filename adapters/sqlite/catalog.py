"""SQLiteCatalog: the catalog read model in SQLite, written exactly once per event.

Each write records the event's ``Tracking`` first, in the same transaction as
its rows, using eventsourcing's single-row tracking table: a position already
passed makes the tracking insert raise ``IntegrityError``, which rolls the
whole transaction back. Recording the position first also serialises
concurrent writers on the tracking row before they touch any catalog row.

Datetimes are stored as fixed-width ISO 8601 text in UTC (so they also sort as
text) and read back timezone-aware; entities are stored as a JSON array.

Trending hashtags are counted per UTC hour in ``catalog_hashtag_hours``, keyed
``(hour, tag)`` so a window of recent hours is a range of its primary key; a
counter that falls to zero is deleted. Popular users are read through an index
on ``(followers_count DESC, username_key)``, in its order, stopping at the limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteTrackingRecorder

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

# Well below SQLite's bound-parameter limit (999 before 3.32, 32766 since).
LOOKUP_CHUNK_SIZE = 500

_USER_COLUMNS = (
    "username, display_name, bio, registered_at, followers_count, following_count, posts_count"
)
_POST_COLUMNS = "post_id, author, text, posted_at, entities"
# A post and its author, if known: the user columns are NULL when not.
_AUTHORED_POST_SELECT = (
    "SELECT p.post_id, p.author, p.text, p.posted_at, p.entities, u.username_key, "
    "u.username, u.display_name, u.bio, u.registered_at, "
    "u.followers_count, u.following_count, u.posts_count "
    "FROM catalog_posts p LEFT JOIN catalog_users u ON u.username_key = p.author_key "
)


def _utc_text(moment: datetime) -> str:
    """Fixed-width ISO 8601 in UTC; a naive datetime is taken to be UTC already."""
    return as_utc(moment).isoformat(timespec="microseconds")


def _parse_utc(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


def _entities_json(entities: Iterable[TextEntity]) -> str:
    return json.dumps([entity.as_dict() for entity in entities], ensure_ascii=False)


def _parse_entities(text: str) -> tuple[TextEntity, ...]:
    return tuple(TextEntity.from_dict(data) for data in json.loads(text))


def _chunks(keys: list[Any], size: int = LOOKUP_CHUNK_SIZE) -> Iterator[list[Any]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


def _user_view(row: Any) -> UserView:
    return UserView(
        username=row["username"],
        display_name=row["display_name"],
        bio=row["bio"],
        registered_at=_parse_utc(row["registered_at"]),
        followers_count=row["followers_count"],
        following_count=row["following_count"],
        posts_count=row["posts_count"],
    )


def _post_view(row: Any) -> PostView:
    return PostView(
        id=UUID(row["post_id"]),
        author=row["author"],
        text=row["text"],
        posted_at=_parse_utc(row["posted_at"]),
        entities=_parse_entities(row["entities"]),
    )


def _hashtag_keys(posted_at: datetime, entities: Iterable[TextEntity]) -> list[tuple[str, str]]:
    """The ``(hour, tag)`` counters a post counts in, in a fixed order."""
    hour = _utc_text(hour_bucket(posted_at))
    return [(hour, tag) for tag in sorted(hashtags_of(list(entities)))]


class SQLiteCatalog(SQLiteTrackingRecorder, Catalog):
    """Users in ``catalog_users``, live posts in ``catalog_posts``, hourly hashtag
    counters in ``catalog_hashtag_hours``, positions in eventsourcing's
    ``tracking`` table. Call :meth:`create_table` once before use."""

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements += [
            "CREATE TABLE IF NOT EXISTS catalog_users ("
            "username_key TEXT PRIMARY KEY, "
            "username TEXT NOT NULL, "
            "display_name TEXT NOT NULL, "
            "bio TEXT NOT NULL, "
            "registered_at TEXT NOT NULL, "
            "followers_count INTEGER NOT NULL DEFAULT 0, "
            "following_count INTEGER NOT NULL DEFAULT 0, "
            "posts_count INTEGER NOT NULL DEFAULT 0"
            ") WITHOUT ROWID",
            # Every lookup is by primary key, so no secondary index is needed
            # (yet): add one on (author_key, posted_at) for per-author queries.
            "CREATE TABLE IF NOT EXISTS catalog_posts ("
            "post_id TEXT PRIMARY KEY, "
            "author TEXT NOT NULL, "
            "author_key TEXT NOT NULL, "
            "text TEXT NOT NULL, "
            "posted_at TEXT NOT NULL, "
            "entities TEXT NOT NULL"
            ")",
            # Who to follow: read in this order, so LIMIT stops early.
            "CREATE INDEX IF NOT EXISTS catalog_users_by_followers "
            "ON catalog_users (followers_count DESC, username_key)",
            # Live posts per (UTC hour, normalised tag); only positive counts are kept.
            "CREATE TABLE IF NOT EXISTS catalog_hashtag_hours ("
            "hour TEXT NOT NULL, "
            "tag TEXT NOT NULL, "
            "posts INTEGER NOT NULL, "
            "PRIMARY KEY (hour, tag)"
            ") WITHOUT ROWID",
        ]
        return statements

    # -- writes: each one transaction with its tracking record ---------------

    def add_user(self, user: UserView, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as c:
            self._insert_tracking(c, tracking)
            c.execute(
                "INSERT INTO catalog_users (username_key, " + _USER_COLUMNS + ") "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (username_key) DO UPDATE SET "
                "username = excluded.username, "
                "display_name = excluded.display_name, "
                "bio = excluded.bio, "
                "registered_at = excluded.registered_at, "
                "followers_count = excluded.followers_count, "
                "following_count = excluded.following_count, "
                "posts_count = excluded.posts_count",
                (
                    username_key(user.username),
                    user.username,
                    user.display_name,
                    user.bio,
                    _utc_text(user.registered_at),
                    user.followers_count,
                    user.following_count,
                    user.posts_count,
                ),
            )

    def update_profile(
        self, username: str, display_name: str, bio: str, tracking: Tracking
    ) -> None:
        with self.datastore.transaction(commit=True) as c:
            self._insert_tracking(c, tracking)
            c.execute(
                "UPDATE catalog_users SET display_name = ?, bio = ? WHERE username_key = ?",
                (display_name, bio, username_key(username)),
            )

    def record_follow(self, follower: str, followee: str, delta: int, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as c:
            self._insert_tracking(c, tracking)
            c.execute(
                "UPDATE catalog_users SET following_count = following_count + ? "
                "WHERE username_key = ?",
                (delta, username_key(follower)),
            )
            c.execute(
                "UPDATE catalog_users SET followers_count = followers_count + ? "
                "WHERE username_key = ?",
                (delta, username_key(followee)),
            )

    def add_post(self, post: PostView, tracking: Tracking) -> None:
        author_key = username_key(post.author)
        with self.datastore.transaction(commit=True) as c:
            self._insert_tracking(c, tracking)
            c.execute(
                "INSERT INTO catalog_posts "
                "(post_id, author, author_key, text, posted_at, entities) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (post_id) DO NOTHING RETURNING post_id",
                (
                    str(post.id),
                    post.author,
                    author_key,
                    post.text,
                    _utc_text(post.posted_at),
                    _entities_json(post.entities),
                ),
            )
            if c.fetchone() is not None:  # a post already known is not counted twice
                c.execute(
                    "UPDATE catalog_users SET posts_count = posts_count + 1 WHERE username_key = ?",
                    (author_key,),
                )
                for hour, tag in _hashtag_keys(post.posted_at, post.entities):
                    c.execute(
                        "INSERT INTO catalog_hashtag_hours (hour, tag, posts) VALUES (?, ?, 1) "
                        "ON CONFLICT (hour, tag) DO UPDATE SET posts = posts + 1",
                        (hour, tag),
                    )

    def remove_post(self, post_id: UUID, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as c:
            self._insert_tracking(c, tracking)
            c.execute(
                "DELETE FROM catalog_posts WHERE post_id = ? "
                "RETURNING author_key, posted_at, entities",
                (str(post_id),),
            )
            row = c.fetchone()
            if row is not None:
                c.execute(
                    "UPDATE catalog_users SET posts_count = posts_count - 1 WHERE username_key = ?",
                    (row["author_key"],),
                )
                posted_at, entities = _parse_utc(row["posted_at"]), _parse_entities(row["entities"])
                for hour, tag in _hashtag_keys(posted_at, entities):
                    c.execute(
                        "UPDATE catalog_hashtag_hours SET posts = posts - 1 "
                        "WHERE hour = ? AND tag = ?",
                        (hour, tag),
                    )
                    c.execute(
                        "DELETE FROM catalog_hashtag_hours "
                        "WHERE hour = ? AND tag = ? AND posts <= 0",
                        (hour, tag),
                    )

    # -- batch reads: one query per chunk of keys, in one read transaction ---

    def close(self) -> None:
        self.datastore.close()

    def users(self, usernames: Iterable[str]) -> dict[str, UserView]:
        keys = list({username_key(name) for name in usernames})
        found: dict[str, UserView] = {}
        if not keys:
            return found
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(keys):
                c.execute(
                    "SELECT username_key, " + _USER_COLUMNS + " FROM catalog_users "
                    f"WHERE username_key IN ({_placeholders(len(chunk))})",
                    chunk,
                )
                for row in c.fetchall():
                    found[row["username_key"]] = _user_view(row)
        return found

    def posts(self, post_ids: Iterable[UUID]) -> dict[UUID, PostView]:
        keys = list({str(post_id) for post_id in post_ids})
        found: dict[UUID, PostView] = {}
        if not keys:
            return found
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(keys):
                c.execute(
                    "SELECT " + _POST_COLUMNS + " FROM catalog_posts "
                    f"WHERE post_id IN ({_placeholders(len(chunk))})",
                    chunk,
                )
                for row in c.fetchall():
                    view = _post_view(row)
                    found[view.id] = view
        return found

    def posts_with_authors(self, post_ids: Iterable[UUID]) -> dict[UUID, AuthoredPost]:
        keys = list({str(post_id) for post_id in post_ids})
        found: dict[UUID, AuthoredPost] = {}
        if not keys:
            return found
        authors: dict[str, UserView] = {}  # each author's view built once
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(keys):
                c.execute(
                    _AUTHORED_POST_SELECT + f"WHERE p.post_id IN ({_placeholders(len(chunk))})",
                    chunk,
                )
                for row in c.fetchall():
                    view = _post_view(row)
                    key = row["username_key"]  # NULL when the author is unknown
                    if key is not None and key not in authors:
                        authors[key] = _user_view(row)
                    found[view.id] = AuthoredPost(view, authors.get(key))
        return found

    # -- ranked reads: each one query over an index, stopping at the limit ---

    def trending_hashtags(self, since: datetime, limit: int = 10) -> list[TrendingTag]:
        if limit <= 0:  # SQLite reads a negative LIMIT as no limit at all
            return []
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT tag, SUM(posts) AS total FROM catalog_hashtag_hours "
                "WHERE hour >= ? GROUP BY tag HAVING SUM(posts) > 0 "
                "ORDER BY total DESC, tag LIMIT ?",
                (_utc_text(hour_bucket(since)), limit),
            )
            return [TrendingTag(row["tag"], row["total"]) for row in c.fetchall()]

    def popular_users(self, limit: int = 10, exclude: Iterable[str] = ()) -> list[UserView]:
        if limit <= 0:
            return []
        # Excluded keys go in as one JSON array, however many there are.
        excluded = json.dumps(sorted({username_key(name) for name in exclude}))
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT " + _USER_COLUMNS + " FROM catalog_users "
                "WHERE username_key NOT IN (SELECT value FROM json_each(?)) "
                "ORDER BY followers_count DESC, username_key LIMIT ?",
                (excluded, limit),
            )
            return [_user_view(row) for row in c.fetchall()]

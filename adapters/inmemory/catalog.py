"""InMemoryCatalog: the catalog read model in dictionaries, for tests and the embedded default."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.popo import POPOTrackingRecorder

from application.catalog import (
    AuthoredPost,
    Catalog,
    PostView,
    TrendingTag,
    UserView,
    as_utc,
    hour_bucket,
)
from domain.tweet import hashtags_of
from domain.user import username_key


class InMemoryCatalog(POPOTrackingRecorder, Catalog):
    """Users by ``username_key``, live posts by id, and hashtag counters by
    ``(hour, tag)``; datetimes are kept in UTC, as the SQL adapters return them."""

    def __init__(self) -> None:
        super().__init__()
        self._users: dict[str, UserView] = {}
        self._posts: dict[UUID, PostView] = {}
        self._hashtag_hours: Counter[tuple[datetime, str]] = Counter()

    def _track(self, tracking: Tracking) -> None:
        self._assert_tracking_uniqueness(tracking)
        self._insert_tracking(tracking)

    def _adjust_user(self, username: str, **deltas: int) -> None:
        key = username_key(username)
        user = self._users.get(key)
        if user is not None:
            changes = {name: getattr(user, name) + delta for name, delta in deltas.items()}
            self._users[key] = dataclasses.replace(user, **changes)

    def _count_hashtags(self, post: PostView, delta: int) -> None:
        hour = hour_bucket(post.posted_at)
        for tag in hashtags_of(list(post.entities)):
            self._hashtag_hours[hour, tag] += delta
            if self._hashtag_hours[hour, tag] <= 0:
                del self._hashtag_hours[hour, tag]

    def add_user(self, user: UserView, tracking: Tracking) -> None:
        with self._database_lock:
            self._track(tracking)
            self._users[username_key(user.username)] = dataclasses.replace(
                user, registered_at=as_utc(user.registered_at)
            )

    def update_profile(
        self, username: str, display_name: str, bio: str, tracking: Tracking
    ) -> None:
        with self._database_lock:
            self._track(tracking)
            key = username_key(username)
            user = self._users.get(key)
            if user is not None:
                self._users[key] = dataclasses.replace(user, display_name=display_name, bio=bio)

    def record_follow(self, follower: str, followee: str, delta: int, tracking: Tracking) -> None:
        with self._database_lock:
            self._track(tracking)
            self._adjust_user(follower, following_count=delta)
            self._adjust_user(followee, followers_count=delta)

    def add_post(self, post: PostView, tracking: Tracking) -> None:
        with self._database_lock:
            self._track(tracking)
            if post.id not in self._posts:
                post = dataclasses.replace(post, posted_at=as_utc(post.posted_at))
                self._posts[post.id] = post
                self._adjust_user(post.author, posts_count=1)
                self._count_hashtags(post, +1)

    def remove_post(self, post_id: UUID, tracking: Tracking) -> None:
        with self._database_lock:
            self._track(tracking)
            post = self._posts.pop(post_id, None)
            if post is not None:
                self._adjust_user(post.author, posts_count=-1)
                self._count_hashtags(post, -1)

    def users(self, usernames: Iterable[str]) -> dict[str, UserView]:
        with self._database_lock:
            keys = {username_key(name) for name in usernames}
            return {key: self._users[key] for key in keys if key in self._users}

    def posts(self, post_ids: Iterable[UUID]) -> dict[UUID, PostView]:
        with self._database_lock:
            return {pid: self._posts[pid] for pid in set(post_ids) if pid in self._posts}

    def posts_with_authors(self, post_ids: Iterable[UUID]) -> dict[UUID, AuthoredPost]:
        with self._database_lock:
            found: dict[UUID, AuthoredPost] = {}
            for pid in set(post_ids):
                post = self._posts.get(pid)
                if post is not None:
                    author = self._users.get(username_key(post.author))
                    found[pid] = AuthoredPost(post, author)
            return found

    def trending_hashtags(self, since: datetime, limit: int = 10) -> list[TrendingTag]:
        if limit <= 0:
            return []
        start = hour_bucket(since)
        totals: Counter[str] = Counter()
        with self._database_lock:
            for (hour, tag), count in self._hashtag_hours.items():
                if hour >= start:
                    totals[tag] += count
        ranked = sorted(
            ((tag, count) for tag, count in totals.items() if count > 0),
            key=lambda item: (-item[1], item[0]),
        )
        return [TrendingTag(tag, count) for tag, count in ranked[:limit]]

    def popular_users(self, limit: int = 10, exclude: Iterable[str] = ()) -> list[UserView]:
        if limit <= 0:
            return []
        excluded = {username_key(name) for name in exclude}
        with self._database_lock:
            candidates = [(k, u) for k, u in self._users.items() if k not in excluded]
        candidates.sort(key=lambda item: (-item[1].followers_count, item[0]))
        return [view for _, view in candidates[:limit]]

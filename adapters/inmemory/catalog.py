"""InMemoryCatalog: the catalog read model in dictionaries, for tests and the embedded default."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.popo import POPOTrackingRecorder

from application.catalog import Catalog, PostView, UserView


class InMemoryCatalog(POPOTrackingRecorder, Catalog):
    def __init__(self) -> None:
        super().__init__()
        self._users: dict[str, UserView] = {}
        self._posts: dict[UUID, PostView] = {}

    def _track(self, tracking: Tracking) -> None:
        self._assert_tracking_uniqueness(tracking)
        self._insert_tracking(tracking)

    def _adjust_user(self, username: str, **deltas: int) -> None:
        user = self._users.get(username.lower())
        if user is not None:
            changes = {name: getattr(user, name) + delta for name, delta in deltas.items()}
            self._users[username.lower()] = dataclasses.replace(user, **changes)

    def add_user(self, user: UserView, tracking: Tracking) -> None:
        with self._database_lock:
            self._track(tracking)
            self._users[user.username.lower()] = user

    def update_profile(
        self, username: str, display_name: str, bio: str, tracking: Tracking
    ) -> None:
        with self._database_lock:
            self._track(tracking)
            user = self._users.get(username.lower())
            if user is not None:
                self._users[username.lower()] = dataclasses.replace(
                    user, display_name=display_name, bio=bio
                )

    def record_follow(self, follower: str, followee: str, delta: int, tracking: Tracking) -> None:
        with self._database_lock:
            self._track(tracking)
            self._adjust_user(follower, following_count=delta)
            self._adjust_user(followee, followers_count=delta)

    def add_post(self, post: PostView, tracking: Tracking) -> None:
        with self._database_lock:
            self._track(tracking)
            if post.id not in self._posts:
                self._posts[post.id] = post
                self._adjust_user(post.author, posts_count=1)

    def remove_post(self, post_id: UUID, tracking: Tracking) -> None:
        with self._database_lock:
            self._track(tracking)
            post = self._posts.pop(post_id, None)
            if post is not None:
                self._adjust_user(post.author, posts_count=-1)

    def users(self, usernames: Iterable[str]) -> dict[str, UserView]:
        with self._database_lock:
            keys = {name.lower() for name in usernames}
            return {key: self._users[key] for key in keys if key in self._users}

    def posts(self, post_ids: Iterable[UUID]) -> dict[UUID, PostView]:
        with self._database_lock:
            return {pid: self._posts[pid] for pid in set(post_ids) if pid in self._posts}

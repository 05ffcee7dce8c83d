"""The catalog port: the read model that enriches feed items in batch.

Feeds hold references (``tweet:<id>``); the catalog holds what a reader sees
of each post and user, keyed so a page of 25 items costs one lookup for posts
and one for their authors. It is a projection of the event log: every write
carries the ``Tracking`` of the event it comes from, written in the same
transaction, so the catalog is updated exactly once per event.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder

from domain.tweet import TextEntity


@dataclass(frozen=True)
class UserView:
    username: str
    display_name: str
    bio: str
    registered_at: datetime
    followers_count: int = 0
    following_count: int = 0
    posts_count: int = 0


@dataclass(frozen=True)
class PostView:
    id: UUID
    author: str
    text: str
    posted_at: datetime
    entities: tuple[TextEntity, ...]


class Catalog(TrackingRecorder, ABC):
    """Users and live posts, for batch enrichment. Usernames are matched
    case-insensitively; lookups of unknown keys are simply absent from the
    result."""

    @abstractmethod
    def add_user(self, user: UserView, tracking: Tracking) -> None: ...

    @abstractmethod
    def update_profile(
        self, username: str, display_name: str, bio: str, tracking: Tracking
    ) -> None: ...

    @abstractmethod
    def record_follow(self, follower: str, followee: str, delta: int, tracking: Tracking) -> None:
        """Adjust follower/following counts by ``delta`` (+1 follow, -1 unfollow)."""

    @abstractmethod
    def add_post(self, post: PostView, tracking: Tracking) -> None: ...

    @abstractmethod
    def remove_post(self, post_id: UUID, tracking: Tracking) -> None: ...

    def close(self) -> None:
        """Release connections; adapters holding a pool override this."""

    @abstractmethod
    def users(self, usernames: Iterable[str]) -> dict[str, UserView]:
        """Users by lower-cased username."""

    @abstractmethod
    def posts(self, post_ids: Iterable[UUID]) -> dict[UUID, PostView]:
        """Live posts by id; deleted and unknown ids are absent."""

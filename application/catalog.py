"""The catalog port: the read model that enriches feed items in batch.

Feeds hold references (``tweet:<id>``); the catalog holds what a reader sees
of each post and user, keyed so a page of 25 items costs one lookup for its
posts and their authors together. It also keeps two small read models of its
own for the web front end: hourly hashtag counters (trending) and users ranked
by followers (who to follow).

It is a projection of the event log: every write carries the ``Tracking`` of
the event it comes from, written in the same transaction as its rows, so the
catalog is updated exactly once per event. A write at a position already
passed raises ``IntegrityError`` and changes nothing. A write about a user or
post the catalog does not know changes nothing but still records its position.

Usernames are matched case-insensitively, keyed by
:func:`domain.user.username_key`. Datetimes may be given in any zone (a naive
one is taken to be UTC) and always come back timezone-aware, in UTC.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
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


@dataclass(frozen=True)
class AuthoredPost:
    """A live post and its author's current view; ``author`` is None when the
    catalog does not know the author (not projected yet, say)."""

    post: PostView
    author: UserView | None


@dataclass(frozen=True)
class ShownPost:
    """A live post as a page shows it: the post and its author's display name
    (the username when the catalog does not know the author)."""

    post: PostView
    author_name: str

    @classmethod
    def of(cls, post: PostView, author: UserView | None) -> ShownPost:
        return cls(post, author.display_name if author else post.author)


@dataclass(frozen=True)
class TrendingTag:
    """A normalised hashtag (``domain.tweet.hashtags_of``) and how many live
    posts carry it in the window asked for."""

    tag: str
    posts: int


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def hour_bucket(moment: datetime) -> datetime:
    """The start of the UTC hour ``moment`` falls in: the key of hashtag counters."""
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)


class Catalog(TrackingRecorder, ABC):
    """Users and live posts, for batch enrichment, plus trending hashtags and
    popular users. Usernames are matched case-insensitively (by
    ``domain.user.username_key``); lookups of unknown keys are simply absent
    from the result. Every write records its ``tracking`` position in the same
    transaction, even when it changes nothing else."""

    @abstractmethod
    def add_user(self, user: UserView, tracking: Tracking) -> None:
        """Add ``user``; adding a username already known (in any case)
        replaces that user, counts included."""

    @abstractmethod
    def update_profile(
        self, username: str, display_name: str, bio: str, tracking: Tracking
    ) -> None:
        """Set the display name and bio of a known user; nothing else changes."""

    @abstractmethod
    def record_follow(self, follower: str, followee: str, delta: int, tracking: Tracking) -> None:
        """Adjust follower/following counts by ``delta`` (+1 follow, -1 unfollow);
        a user the catalog does not know is skipped, the other still adjusted."""

    @abstractmethod
    def add_post(self, post: PostView, tracking: Tracking) -> None:
        """Add a live post, count it on its author (if known) and add one to
        the counter of each distinct hashtag it carries, in the hour it was
        posted. A post already known is kept once and counted once."""

    @abstractmethod
    def remove_post(self, post_id: UUID, tracking: Tracking) -> None:
        """Remove a live post, undoing what :meth:`add_post` counted (using the
        stored post's time and entities); an unknown or removed id changes
        nothing."""

    def close(self) -> None:
        """Release connections; adapters holding a pool override this."""

    @abstractmethod
    def users(self, usernames: Iterable[str]) -> dict[str, UserView]:
        """Users by ``username_key``."""

    @abstractmethod
    def posts(self, post_ids: Iterable[UUID]) -> dict[UUID, PostView]:
        """Live posts by id; deleted and unknown ids are absent."""

    @abstractmethod
    def posts_with_authors(self, post_ids: Iterable[UUID]) -> dict[UUID, AuthoredPost]:
        """Live posts by id, each with its author's current view (None if the
        author is unknown), read in one query whatever the number of ids (one
        per chunk where the database bounds a statement's parameters);
        deleted and unknown ids are absent."""

    def shown_posts(self, post_ids: Iterable[UUID]) -> dict[UUID, ShownPost]:
        """Live posts by id with their authors' display names: all a page of
        a feed needs, as :meth:`posts_with_authors` finds them (a cache in
        front of the catalog serves this without the whole author view)."""
        return {
            post_id: ShownPost.of(found.post, found.author)
            for post_id, found in self.posts_with_authors(post_ids).items()
        }

    @abstractmethod
    def trending_hashtags(self, since: datetime, limit: int = 10) -> list[TrendingTag]:
        """The ``limit`` hashtags carried by the most live posts posted in the
        hours from ``since`` (truncated down to its hour, UTC) on: most posts
        first, ties by tag ascending (by code point). Tags no live post in the
        window carries are absent. Read from hourly counters kept by
        :meth:`add_post` and :meth:`remove_post`, not by scanning posts."""

    @abstractmethod
    def popular_users(self, limit: int = 10, exclude: Iterable[str] = ()) -> list[UserView]:
        """The ``limit`` users with the most followers, ties by ``username_key``
        ascending (by code point), leaving out the usernames in ``exclude``
        (matched case-insensitively)."""

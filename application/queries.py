"""The query side: feeds read from the feed provider, enriched from the catalog.

A page costs one feed read, one catalog lookup for its posts and one for their
authors, whatever its length. A post deleted since it was fanned out is left
out even before the projector has removed it from every feed.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from application.catalog import Catalog, UserView
from application.feed_names import (
    hashtag_feed,
    mentions_feed,
    post_id_from_foreign_id,
    timeline_feed,
    user_feed,
)
from application.feeds import (
    DEFAULT_READ_LIMIT,
    MAX_READ_LIMIT,
    FeedId,
    FeedInputError,
    FeedProvider,
    StoredActivity,
)
from domain.errors import DomainError, UserNotFound
from domain.text import is_valid_hashtag
from domain.tweet import TextEntity
from domain.user import check_username, username_key

BAD_CURSOR = "this page link is not valid; start again from the newest posts"


class InvalidCursor(DomainError):
    pass


class InvalidQuery(DomainError):
    pass


@dataclass(frozen=True)
class Author:
    username: str
    display_name: str


@dataclass(frozen=True)
class FeedItem:
    post_id: UUID
    author: Author
    text: str
    posted_at: datetime
    entities: tuple[TextEntity, ...]


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    next_cursor: str | None  # None on the last page


def encode_cursor(activity_id: str) -> str:
    return base64.urlsafe_b64encode(uuid.UUID(activity_id).bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return str(uuid.UUID(bytes=raw))
    except (ValueError, binascii.Error, TypeError):
        raise InvalidCursor(
            "this page link is not valid; start again from the newest posts"
        ) from None


class FeedQueries:
    def __init__(self, provider: FeedProvider, catalog: Catalog) -> None:
        self.provider = provider
        self.catalog = catalog

    def user(self, username: str) -> UserView:
        check_username(username)
        found = self.catalog.users([username]).get(username_key(username))
        if found is None:
            raise UserNotFound(f"there is no user @{username}")
        return found

    def profile_feed(
        self, username: str, limit: int = DEFAULT_READ_LIMIT, cursor: str | None = None
    ) -> FeedPage:
        self.user(username)
        return self._page(user_feed(username), limit, cursor)

    def home_timeline(
        self, username: str, limit: int = DEFAULT_READ_LIMIT, cursor: str | None = None
    ) -> FeedPage:
        self.user(username)
        return self._page(timeline_feed(username), limit, cursor)

    def mentions(
        self, username: str, limit: int = DEFAULT_READ_LIMIT, cursor: str | None = None
    ) -> FeedPage:
        self.user(username)
        return self._page(mentions_feed(username), limit, cursor)

    def hashtag(
        self, tag: str, limit: int = DEFAULT_READ_LIMIT, cursor: str | None = None
    ) -> FeedPage:
        tag = tag.removeprefix("#")
        if not is_valid_hashtag(tag):
            raise InvalidQuery(f"#{tag} is not a hashtag")
        return self._page(hashtag_feed(tag), limit, cursor)

    def _page(self, feed: FeedId, limit: int, cursor: str | None) -> FeedPage:
        if not 1 <= limit <= MAX_READ_LIMIT:
            raise InvalidQuery(f"a page holds between 1 and {MAX_READ_LIMIT} posts, not {limit}")
        id_lt = decode_cursor(cursor) if cursor else None
        shown: list[tuple[str, FeedItem]] = []
        # Posts deleted but not yet removed from this feed are skipped; read
        # on so the page is still full.
        while len(shown) < limit:
            try:
                activities = self.provider.read(feed, limit=limit, id_lt=id_lt)
            except FeedInputError:
                raise InvalidCursor(BAD_CURSOR) from None
            shown += self._enrich(activities)
            if len(activities) < limit:  # the feed has no more
                page = shown[:limit]
                more = len(shown) > limit
                return FeedPage(
                    [item for _, item in page], encode_cursor(page[-1][0]) if more else None
                )
            id_lt = activities[-1].id
        page = shown[:limit]
        return FeedPage([item for _, item in page], encode_cursor(page[-1][0]))

    def _enrich(self, activities: list[StoredActivity]) -> list[tuple[str, FeedItem]]:
        """Each activity that is a live post, with its activity id."""
        post_ids = [post_id_from_foreign_id(a.foreign_id) for a in activities]
        posts = self.catalog.posts(pid for pid in post_ids if pid is not None)
        authors = self.catalog.users(post.author for post in posts.values())
        items = []
        for activity, post_id in zip(activities, post_ids, strict=True):
            post = posts.get(post_id) if post_id is not None else None
            if post is None:
                continue
            author = authors.get(username_key(post.author))
            display_name = author.display_name if author else post.author
            item = FeedItem(
                post.id, Author(post.author, display_name), post.text, post.posted_at, post.entities
            )
            items.append((activity.id, item))
        return items

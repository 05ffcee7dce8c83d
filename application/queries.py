"""The query side: feeds read from the feed provider, enriched from the catalog.

A page costs one feed read and one catalog lookup for its posts and their
authors together, whatever its length; a user's feed looks its owner up in the
catalog only when the page comes back empty (or cannot be read), and a page of
notifications looks up the followers it shows. A post deleted since it was
fanned out is left out even before the projector has removed it from every feed.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from application.catalog import Catalog, ShownPost, TrendingTag, UserView
from application.feed_names import (
    hashtag_feed,
    mentions_feed,
    notifications_feed,
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
    FeedProviderError,
    StoredActivity,
)
from application.pages import PageEntry, PageReader, page_entries
from application.projectors import FOLLOW_VERB
from domain.errors import DomainError, TweetNotFound, UserNotFound
from domain.text import is_valid_hashtag, is_valid_username
from domain.tweet import TextEntity
from domain.user import username_key

T = TypeVar("T")
TRENDING_WINDOW = timedelta(hours=24)
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
class Notification:
    kind: str  # "mention" | "follow"
    actor: Author
    at: datetime
    post: FeedItem | None  # the mentioning post, for "mention"


@dataclass(frozen=True)
class NotificationPage:
    items: list[Notification]
    next_cursor: str | None


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
    """Pages of feeds and lookups for the web. With ``pages``, a page and
    what it shows are read together (one round trip where the store allows);
    without, from ``provider`` then ``catalog``."""

    def __init__(
        self, provider: FeedProvider, catalog: Catalog, pages: PageReader | None = None
    ) -> None:
        self.provider = provider
        self.catalog = catalog
        self.pages = pages

    def user(self, username: str) -> UserView:
        _check_username(username)
        found = self.catalog.users([username]).get(username_key(username))
        if found is None:
            raise _user_not_found(username)
        return found

    def profile_feed(
        self, username: str, limit: int = DEFAULT_READ_LIMIT, cursor: str | None = None
    ) -> FeedPage:
        return self._owned_page(username, user_feed, limit, cursor)

    def home_timeline(
        self, username: str, limit: int = DEFAULT_READ_LIMIT, cursor: str | None = None
    ) -> FeedPage:
        return self._owned_page(username, timeline_feed, limit, cursor)

    def mentions(
        self, username: str, limit: int = DEFAULT_READ_LIMIT, cursor: str | None = None
    ) -> FeedPage:
        return self._owned_page(username, mentions_feed, limit, cursor)

    def hashtag(
        self, tag: str, limit: int = DEFAULT_READ_LIMIT, cursor: str | None = None
    ) -> FeedPage:
        tag = tag.removeprefix("#")
        if not is_valid_hashtag(tag):
            raise InvalidQuery(f"#{tag} is not a hashtag")
        return self._page(hashtag_feed(tag), limit, cursor)

    def notifications(
        self, username: str, limit: int = DEFAULT_READ_LIMIT, cursor: str | None = None
    ) -> NotificationPage:
        """Posts that mention ``username`` and new followers, newest first."""
        items, next_cursor = self._read_owned(
            username, notifications_feed, limit, cursor, self._enrich_notifications
        )
        return NotificationPage(items, next_cursor)

    def post(self, post_id: UUID) -> FeedItem:
        found = self.catalog.shown_posts([post_id]).get(post_id)
        if found is None:
            raise TweetNotFound(f"there is no post {post_id}")
        return _item(found)

    def followers(self, username: str, limit: int = 25, offset: int = 0) -> list[UserView]:
        """Users following ``username``, most recent first."""
        self.user(username)
        self._check_list_page(limit, offset)
        feeds = self.provider.followers(user_feed(username), limit=limit, offset=offset)
        own_timeline = timeline_feed(username)
        return self._users_in_order([f.id for f in feeds if f != own_timeline])

    def following(self, username: str, limit: int = 25, offset: int = 0) -> list[UserView]:
        """Users ``username`` follows, most recent first."""
        self.user(username)
        self._check_list_page(limit, offset)
        own_feed = user_feed(username)
        # The timeline follows its owner's own feed too: skip that edge.
        feeds = self.provider.following(timeline_feed(username), limit=limit + 1, offset=offset)
        return self._users_in_order([f.id for f in feeds if f != own_feed][:limit])

    def trending_hashtags(self, now: datetime | None = None, limit: int = 10) -> list[TrendingTag]:
        """Hashtags of the most posts over the last 24 hours."""
        now = now or datetime.now(UTC)
        return self.catalog.trending_hashtags(now - TRENDING_WINDOW, limit)

    def who_to_follow(
        self, username: str, already_following: Iterable[str], limit: int = 5
    ) -> list[UserView]:
        """The most followed users that ``username`` does not follow yet."""
        return self.catalog.popular_users(limit, exclude=[username, *already_following])

    # -- reading and enriching pages -------------------------------------------

    @staticmethod
    def _check_list_page(limit: int, offset: int) -> None:
        if not 1 <= limit <= MAX_READ_LIMIT or offset < 0:
            raise InvalidQuery(f"a list page holds between 1 and {MAX_READ_LIMIT} users")

    def _users_in_order(self, keys: list[str]) -> list[UserView]:
        found = self.catalog.users(keys)
        return [found[key] for key in keys if key in found]

    def _page(self, feed: FeedId, limit: int, cursor: str | None) -> FeedPage:
        items, next_cursor = self._read(feed, limit, cursor, self._enrich)
        return FeedPage(items, next_cursor)

    def _owned_page(
        self, username: str, feed: Callable[[str], FeedId], limit: int, cursor: str | None
    ) -> FeedPage:
        items, next_cursor = self._read_owned(username, feed, limit, cursor, self._enrich)
        return FeedPage(items, next_cursor)

    def _read_owned(
        self,
        username: str,
        feed: Callable[[str], FeedId],
        limit: int,
        cursor: str | None,
        enrich: Callable[[list[PageEntry]], list[tuple[str, T]]],
    ) -> tuple[list[T], str | None]:
        """A page of ``username``'s ``feed``. ``UserNotFound`` for an unknown
        user comes first, before any error of the read, as when the user was
        looked up before reading; but the catalog is asked only when the page
        is empty or the read fails."""
        _check_username(username)
        try:
            items, next_cursor = self._read(feed(username), limit, cursor, enrich)
        except (DomainError, FeedProviderError):
            self.user(username)  # an unknown user comes before a bad cursor or an outage
            raise
        # A feed of an unknown user is always empty, so only an empty page needs the lookup.
        if not items:
            self.user(username)
        return items, next_cursor

    def _read(
        self,
        feed: FeedId,
        limit: int,
        cursor: str | None,
        enrich: Callable[[list[PageEntry]], list[tuple[str, T]]],
    ) -> tuple[list[T], str | None]:
        """One page of ``feed`` as enriched items, and the cursor of the next."""
        if not 1 <= limit <= MAX_READ_LIMIT:
            raise InvalidQuery(f"a page holds between 1 and {MAX_READ_LIMIT} posts, not {limit}")
        id_lt = decode_cursor(cursor) if cursor else None
        shown: list[tuple[str, T]] = []
        # Posts deleted but not yet removed from this feed are skipped; read
        # on so the page is still full.
        while len(shown) < limit:
            try:
                if self.pages is not None:
                    entries = self.pages.read(feed, limit, id_lt)
                else:
                    entries = self._with_posts(self.provider.read(feed, limit=limit, id_lt=id_lt))
            except FeedInputError:
                raise InvalidCursor(BAD_CURSOR) from None
            shown += enrich(entries)
            if len(entries) < limit:  # the feed has no more
                page = shown[:limit]
                more = len(shown) > limit
                return [item for _, item in page], encode_cursor(page[-1][0]) if more else None
            id_lt = entries[-1][0].id
        page = shown[:limit]
        return [item for _, item in page], encode_cursor(page[-1][0])

    def _with_posts(self, activities: list[StoredActivity]) -> list[PageEntry]:
        """Each activity with the live post it refers to, if any: one catalog
        lookup for the page, none when it refers to no post."""
        post_ids = [post_id_from_foreign_id(a.foreign_id) for a in activities]
        wanted = [pid for pid in post_ids if pid is not None]
        posts = self.catalog.shown_posts(wanted) if wanted else {}
        return page_entries(activities, post_ids, posts)

    @staticmethod
    def _enrich(entries: list[PageEntry]) -> list[tuple[str, FeedItem]]:
        """Each activity that is a live post, with its activity id."""
        return [(activity.id, _item(post)) for activity, post in entries if post is not None]

    def _enrich_notifications(self, entries: list[PageEntry]) -> list[tuple[str, Notification]]:
        follower_names = [a.actor for a, post in entries if _is_follow(a, post)]
        followers = self.catalog.users(follower_names) if follower_names else {}
        items: list[tuple[str, Notification]] = []
        for activity, post in entries:
            if post is not None:
                item = _item(post)
                items.append(
                    (activity.id, Notification("mention", item.author, item.posted_at, item))
                )
            elif _is_follow(activity, post):
                follower = followers.get(username_key(activity.actor))
                if follower is not None:
                    author = Author(follower.username, follower.display_name)
                    at = activity.time.replace(tzinfo=UTC)
                    items.append((activity.id, Notification("follow", author, at, None)))
        return items


def _is_follow(activity: StoredActivity, post: ShownPost | None) -> bool:
    """A new follower's notification (not a post, whether live or deleted)."""
    return (
        post is None
        and activity.verb == FOLLOW_VERB
        and post_id_from_foreign_id(activity.foreign_id) is None
    )


def _check_username(username: str) -> None:
    if not is_valid_username(username):  # such a user cannot exist
        raise _user_not_found(username)


def _user_not_found(username: str) -> UserNotFound:
    return UserNotFound(f"there is no user @{username}")


def _item(found: ShownPost) -> FeedItem:
    post = found.post
    return FeedItem(
        post.id, Author(post.author, found.author_name), post.text, post.posted_at, post.entities
    )

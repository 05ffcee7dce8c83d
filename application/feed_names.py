"""Which feed holds what: Chirp's feed groups and how names map to feed ids.

- ``user:<name>``: one user's posts (the profile feed);
- ``timeline:<name>``: the home timeline; it follows ``user:<name>`` itself and
  every followee's ``user`` feed, and receives posts that mention the user;
- ``mentions:<name>``: posts that mention the user;
- ``notifications:<name>``: posts that mention the user and new followers;
- ``hashtag:<tag>``: posts carrying ``#tag``, case-insensitively.
"""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID

from application.feeds import FEED_PART, FeedId
from domain.text import normalize_hashtag
from domain.user import username_key

USER = "user"
TIMELINE = "timeline"
MENTIONS = "mentions"
HASHTAG = "hashtag"
NOTIFICATIONS = "notifications"
POST_PREFIX = "tweet:"
FOLLOW_PREFIX = "follow:"
# Feed ids made from names are kept (they are immutable): a replay makes
# several for each event, checking each part, from a few thousand names.
FEED_ID_CACHE = 2**16


@lru_cache(maxsize=FEED_ID_CACHE)
def user_feed(username: str) -> FeedId:
    return FeedId(USER, username_key(username))


@lru_cache(maxsize=FEED_ID_CACHE)
def timeline_feed(username: str) -> FeedId:
    return FeedId(TIMELINE, username_key(username))


@lru_cache(maxsize=FEED_ID_CACHE)
def mentions_feed(username: str) -> FeedId:
    return FeedId(MENTIONS, username_key(username))


@lru_cache(maxsize=FEED_ID_CACHE)
def notifications_feed(username: str) -> FeedId:
    return FeedId(NOTIFICATIONS, username_key(username))


@lru_cache(maxsize=FEED_ID_CACHE)
def hashtag_feed(tag: str) -> FeedId:
    """The feed of ``#tag``. Twitter allows a few characters in hashtags that
    feed ids refuse (``・``, ``〜``…); each is written ``-<hex>-``, which no
    hashtag can contain, so distinct tags keep distinct feeds."""
    key = normalize_hashtag(tag)
    escaped = "".join(ch if FEED_PART.match(ch) else f"-{ord(ch):x}-" for ch in key)
    return FeedId(HASHTAG, escaped)


def post_foreign_id(post_id: UUID) -> str:
    return f"{POST_PREFIX}{post_id}"


def post_id_from_foreign_id(foreign_id: str) -> UUID | None:
    if not foreign_id.startswith(POST_PREFIX):
        return None
    try:
        return UUID(foreign_id[len(POST_PREFIX) :])
    except ValueError:
        return None


def follow_foreign_id(follower: str, followee: str) -> str:
    return f"{FOLLOW_PREFIX}{username_key(follower)}:{username_key(followee)}"

"""The feed provider port: what Chirp needs from a feed service.

Modelled on GetStream's v2 feeds (``shared/reference/getstream-feeds.md``) so
that the in-memory, Redis and GetStream adapters are interchangeable:

- a feed is ``group:id``; an activity added to a feed is copied to the feeds
  that follow it (one hop) and to its ``to`` targets (and their followers),
  however many there are: an adapter whose service takes fewer targets a
  request (GetStream takes 100) sends them in several;
- the same ``foreign_id`` + ``time`` written again replaces, never duplicates,
  and one activity reaching a feed by two paths shows once;
- removing by ``foreign_id`` on the origin feed removes every copy: a copy
  made from feed F (F's follower, or a ``to`` target of an activity added to
  F) lasts while F holds the activity directly or as a ``to`` target;
- following copies the target's newest activities, unfollowing removes them
  unless history is kept;
- reads are newest first by ``time`` then ``id``, paged with ``id_lt``.

Every write is idempotent, so a projector that replays an event after a crash
(at-least-once delivery) leaves the feeds exactly as one delivery would.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Self

FEED_PART = re.compile(r"^[\w-]+\Z")
MAX_ADD_TO_MANY = 5000
DEFAULT_COPY_LIMIT = 100
MAX_COPY_LIMIT = 1000
DEFAULT_READ_LIMIT = 25
MAX_READ_LIMIT = 100
DEFAULT_CELEBRITY_THRESHOLD = 10_000
# More follows than any list can hold (a Redis sorted set holds fewer
# members): a page from this offset on is past the end of every list.
MAX_FOLLOW_OFFSET = 2**32


class FeedProviderError(Exception):
    """Base class of every error a feed provider raises."""


class FeedInputError(FeedProviderError, ValueError):
    """The request is malformed: a bad feed id, activity, limit or cursor."""


class FeedUnavailableError(FeedProviderError):
    """The feed service cannot be reached or keeps failing; retry later."""


class _FeedIdParts(NamedTuple):
    group: str
    id: str


class FeedId(_FeedIdParts):
    """A feed's address, ``group:id``, both parts matching ``[\\w-]+``.

    A tuple underneath (ordered by group, then id), so that hashing and
    comparing one, which feed stores do at every step, runs in C."""

    __slots__ = ()

    def __new__(cls, group: str, id: str) -> Self:
        for part, value in (("group", group), ("id", id)):
            if not isinstance(value, str) or not FEED_PART.match(value):
                raise FeedInputError(
                    f"feed {part} {value!r} may only contain letters, digits, _ and -"
                )
        return super().__new__(cls, group, id)

    @classmethod
    def parse(cls, text: str) -> FeedId:
        group, sep, feed_id = text.partition(":")
        if not sep:
            raise FeedInputError(f"feed {text!r} must look like group:id")
        return cls(group, feed_id)

    def __str__(self) -> str:
        return f"{self.group}:{self.id}"


@dataclass(frozen=True)
class Activity:
    """An activity as written by the application.

    ``time`` is naive UTC, as GetStream stores it. ``extra`` holds any further
    fields; values are stored as given and read back as strings.
    """

    actor: str
    verb: str
    object: str
    foreign_id: str
    time: datetime
    to: tuple[FeedId, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("actor", "verb", "object", "foreign_id"):
            if not getattr(self, name):
                raise FeedInputError(f"an activity needs a non-empty {name}")
        if self.time.tzinfo is not None:
            raise FeedInputError("activity time must be naive UTC")


@dataclass(frozen=True)
class StoredActivity:
    """An activity as read back from a feed: with the provider's id.

    ``id`` is the same in every feed the activity reached. GetStream also
    says which feed a copy came from (``origin``); Chirp never asks, so the
    port leaves it out and the Redis adapter need not work it out on reads.
    """

    id: str
    actor: str
    verb: str
    object: str
    foreign_id: str
    time: datetime
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Follow:
    """``source`` follows ``target``: ``target``'s activities reach ``source``."""

    source: FeedId
    target: FeedId

    def __post_init__(self) -> None:
        if self.source == self.target:
            raise FeedInputError(f"feed {self.source} cannot follow itself")


def check_copy_limit(activity_copy_limit: int) -> None:
    if not 0 <= activity_copy_limit <= MAX_COPY_LIMIT:
        raise FeedInputError(
            f"activity_copy_limit must be between 0 and {MAX_COPY_LIMIT}, not {activity_copy_limit}"
        )


def check_page(limit: int, offset: int) -> None:
    """Paging of ``followers``/``following``: any limit from 1 and offset
    from 0, however large (past the end, the page is empty)."""
    if limit < 1:
        raise FeedInputError(f"limit must be at least 1, not {limit}")
    if offset < 0:
        raise FeedInputError(f"offset must not be negative, not {offset}")


def past_every_list(offset: int) -> bool:
    """Whether a page of follows from ``offset`` is empty whatever the list."""
    return offset >= MAX_FOLLOW_OFFSET


def check_fan_out_chunk(followers: Sequence[FeedId]) -> None:
    if len(followers) > MAX_ADD_TO_MANY:
        raise FeedInputError(
            f"copy_to_followers takes at most {MAX_ADD_TO_MANY} feeds, not {len(followers)}"
        )


def check_read_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_READ_LIMIT:
        raise FeedInputError(f"limit must be between 1 and {MAX_READ_LIMIT}, not {limit}")


_UUID_EPOCH = datetime(1582, 10, 15)


def activity_id(foreign_id: str, time: datetime) -> str:
    """The id of the activity ``foreign_id`` at ``time``: a version 1 UUID
    whose timestamp is ``time`` (as GetStream's are) and whose other bits come
    from ``foreign_id``. Deterministic, so a replayed write gets the same id."""
    return activity_key(foreign_id, time)[1]


def activity_key(foreign_id: str, time: datetime) -> tuple[int, str]:
    """``activity_sort_key(activity_id(foreign_id, time))``, without reading
    the id back from its text."""
    ticks = (time - _UUID_EPOCH) // timedelta(microseconds=1) * 10
    digest = int.from_bytes(hashlib.sha1(foreign_id.encode()).digest()[:8], "big")
    clock_seq = (digest >> 48) & 0x3FFF
    node = digest & 0xFFFFFFFFFFFF
    made = uuid.UUID(
        fields=(
            ticks & 0xFFFFFFFF,
            (ticks >> 32) & 0xFFFF,
            ((ticks >> 48) & 0x0FFF) | 0x1000,
            0x80 | (clock_seq >> 8),
            clock_seq & 0xFF,
            node,
        )
    )
    return made.time, str(made)


def activity_sort_key(activity_id_text: str) -> tuple[int, str]:
    """The order of an activity in every feed: its time (in 100 ns ticks),
    then its id. Raises FeedInputError for a string that is no activity id."""
    try:
        parsed = uuid.UUID(activity_id_text)
    except (ValueError, TypeError, AttributeError):
        raise FeedInputError(f"{activity_id_text!r} is not an activity id") from None
    if parsed.version != 1:
        raise FeedInputError(f"{activity_id_text!r} is not an activity id")
    return parsed.time, str(parsed)


class FeedProvider(ABC):
    """The port every feed adapter implements. All writes are idempotent.

    An adapter with ``supports_chunked_fan_out`` implements
    :meth:`store_activity` and :meth:`copy_to_followers`, which split
    :meth:`add_activity` in two so a large fan-out can be done in chunks by
    several workers: ``store_activity`` then ``copy_to_followers`` over every
    follower (in any order, any number of times) leaves the feeds exactly as
    ``add_activity`` would.
    """

    supports_chunked_fan_out: bool = False

    @abstractmethod
    def add_activity(self, feed: FeedId, activity: Activity) -> str:
        """Store ``activity`` in ``feed``, its followers, its ``to`` targets
        (any number of them) and their followers; return the activity id.
        Writing the same ``foreign_id`` + ``time`` again replaces it and
        returns the same id."""

    def store_activity(self, feed: FeedId, activity: Activity) -> str:
        """:meth:`add_activity` without the copies to ``feed``'s own followers
        (``to`` targets and their followers still get theirs); those are made
        by :meth:`copy_to_followers`. Only when ``supports_chunked_fan_out``."""
        raise NotImplementedError(f"{type(self).__name__} does not fan out in chunks")

    def copy_to_followers(
        self, feed: FeedId, activity_id: str, followers: Sequence[FeedId]
    ) -> None:
        """Copy ``feed``'s activity ``activity_id`` to each of ``followers``
        (at most 5,000) exactly as fan-out would have. A listed feed that does
        not follow ``feed`` is skipped, and nothing happens if ``feed`` no
        longer holds the activity: a chunk may run after a later unfollow or
        removal was applied. Idempotent. Only when ``supports_chunked_fan_out``."""
        raise NotImplementedError(f"{type(self).__name__} does not fan out in chunks")

    def fans_out_on_read(self, feed: FeedId) -> bool:
        """True when ``feed``'s activities reach its followers at read time
        (a *hybrid* account, past the provider's celebrity threshold), so no
        copy needs to be made for them."""
        return False

    @abstractmethod
    def remove_activity(self, feed: FeedId, foreign_id: str) -> None:
        """Remove every activity with ``foreign_id`` (any ``time``) from
        ``feed`` and every copy made from it. Unknown ids are ignored."""

    @abstractmethod
    def add_to_many(self, activity: Activity, feeds: Sequence[FeedId]) -> str:
        """Write ``activity`` to each of ``feeds`` directly (at most 5,000),
        without follower fan-out and ignoring ``to``; return its id."""

    @abstractmethod
    def follow(
        self, source: FeedId, target: FeedId, activity_copy_limit: int = DEFAULT_COPY_LIMIT
    ) -> None:
        """Make ``source`` follow ``target``, copying ``target``'s newest
        ``activity_copy_limit`` activities written to it directly or as a ``to``
        target (one hop, as fan-out). Following again is a no-op."""

    @abstractmethod
    def unfollow(self, source: FeedId, target: FeedId, keep_history: bool = False) -> None:
        """Stop ``source`` following ``target``; unless ``keep_history``,
        remove what ``source`` holds only by following ``target``.
        Unfollowing a feed not followed is a no-op."""

    def follow_many(
        self, follows: Iterable[Follow], activity_copy_limit: int = DEFAULT_COPY_LIMIT
    ) -> None:
        """Batch form of :meth:`follow` for replay. Adapters may override it
        to use fewer round trips."""
        check_copy_limit(activity_copy_limit)
        for item in follows:
            self.follow(item.source, item.target, activity_copy_limit)

    def unfollow_many(self, follows: Iterable[Follow], keep_history: bool = False) -> None:
        """Batch form of :meth:`unfollow`."""
        for item in follows:
            self.unfollow(item.source, item.target, keep_history)

    @abstractmethod
    def read(
        self, feed: FeedId, limit: int = DEFAULT_READ_LIMIT, id_lt: str | None = None
    ) -> list[StoredActivity]:
        """Newest first by time then id; ``id_lt`` returns only activities
        that sort after the one with that id. Any id the provider issued works
        as a cursor, even that of an activity removed since; a string that is
        no activity id is an input error."""

    @abstractmethod
    def followers(self, feed: FeedId, limit: int = 25, offset: int = 0) -> list[FeedId]:
        """Feeds following ``feed``, most recent follow first; none past the
        end, however large ``offset`` (see ``check_page``)."""

    @abstractmethod
    def following(self, feed: FeedId, limit: int = 25, offset: int = 0) -> list[FeedId]:
        """Feeds ``feed`` follows, most recent follow first; none past the
        end, however large ``offset``."""

"""An in-memory ``FeedProvider``: the GetStream v2 feed model in one process.

Each activity is stored once; a feed holds sort keys pointing at it. Every
entry (a feed holding an activity) remembers the *paths* by which the activity
arrived there:

- ``direct``: written to that feed (``add_activity`` on it, ``add_to_many``);
- ``to`` from F: the feed was a ``to`` target of the activity added to F;
- ``follow`` from F: the feed follows F and got the activity from it.

A feed's *own* activities are those it holds ``direct`` or by ``to``: only
these fan out to its followers and are copied on follow (one hop). A copy from
F stays valid while F owns the activity, so removing the activity from F, or F
losing its ``to`` path, drops every copy made from F. Unfollowing drops only
the ``follow`` paths from that feed, so an activity that also arrived another
way stays. An entry goes when its last path goes.

Reads and writes find their place by binary search in each feed's sorted list
of keys (a key newer than the feed's newest, as when the log is projected in
order, is appended; an older one is inserted, moving the newer ones along),
with dict indexes; fan-out and removal cost one step per copy touched.

Hybrid fan-out: a feed with more than ``celebrity_threshold`` followers when
it fans out becomes *hybrid*, and stays so: its pending log must be kept for
the followers that have not applied it anyway, and an account hovering around
the threshold would otherwise switch back and forth.
A hybrid feed's fan-out appends ``(activity, ownership epoch)`` to its
*pending log* instead of touching any follower: constant work per post. Each
follower keeps a cursor in the log of every hybrid feed it follows (set to the
log's end when it follows) and applies the entries past it, the copies
fan-out would have made, before anything reads or changes that follower
(:meth:`InMemoryFeedProvider._settle`). An entry whose activity the feed has
since stopped owning (the epoch changed) is skipped, exactly as the eager copy
would have been dropped. So every read is the same with or without a
threshold; the model test runs with a threshold of 1 to prove it.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from itertools import islice
from typing import NamedTuple, TypeVar

from application.feeds import (
    DEFAULT_CELEBRITY_THRESHOLD,
    DEFAULT_COPY_LIMIT,
    DEFAULT_READ_LIMIT,
    MAX_ADD_TO_MANY,
    Activity,
    FeedId,
    FeedInputError,
    FeedProvider,
    Follow,
    StoredActivity,
    activity_key,
    activity_sort_key,
    check_copy_limit,
    check_fan_out_chunk,
    check_page,
    check_read_limit,
)

SortKey = tuple[int, str]
K = TypeVar("K")
V = TypeVar("V")


class PathKind(Enum):
    DIRECT = "direct"
    TO = "to"
    FOLLOW = "follow"

    # Members are singletons: hashing one (every path in every set) need not
    # run Enum's hash of the name, in Python.
    __hash__ = object.__hash__


class Path(NamedTuple):
    """How an activity reached a feed; ``source`` is None only for DIRECT."""

    kind: PathKind
    source: FeedId | None


DIRECT = Path(PathKind.DIRECT, None)


@dataclass
class _Record:
    """An activity's data, shared by every feed holding it."""

    key: SortKey
    actor: str
    verb: str
    object: str
    foreign_id: str
    time: datetime
    extra: dict[str, str]
    holders: set[FeedId]


def _is_own(paths: set[Path]) -> bool:
    return any(path.kind is not PathKind.FOLLOW for path in paths)


class InMemoryFeedProvider(FeedProvider):
    """Feeds held in process memory; thread-safe, lost on exit.

    ``celebrity_threshold``: a feed with more followers than this is fanned
    out at read time (see the module docstring); None never does.
    """

    supports_chunked_fan_out = True

    def __init__(self, celebrity_threshold: int | None = DEFAULT_CELEBRITY_THRESHOLD) -> None:
        if celebrity_threshold is not None and celebrity_threshold < 0:
            raise ValueError(f"celebrity_threshold must not be negative, not {celebrity_threshold}")
        self.celebrity_threshold = celebrity_threshold
        self._lock = threading.RLock()
        self._records: dict[str, _Record] = {}
        self._ids_by_foreign_id: dict[str, set[str]] = {}
        # feed -> activity id -> the paths by which it arrived.
        self._entries: dict[FeedId, dict[str, set[Path]]] = {}
        # Sorted lists of the keys each feed holds, and owns.
        self._timeline: dict[FeedId, list[SortKey]] = {}
        self._own: dict[FeedId, list[SortKey]] = {}
        # activity id -> source feed -> feeds holding a copy made from it.
        self._copies: dict[str, dict[FeedId, set[FeedId]]] = {}
        # (follower, followed) -> ids the follower holds by a follow path.
        self._followed_ids: dict[tuple[FeedId, FeedId], set[str]] = {}
        # Dicts keep insertion order: the most recent follow is last.
        self._followers: dict[FeedId, dict[FeedId, None]] = {}
        self._following: dict[FeedId, dict[FeedId, None]] = {}
        # Hybrid feeds -> their pending log of (activity id, ownership epoch).
        self._pending: dict[FeedId, list[tuple[str, int]]] = {}
        # Follower -> the hybrid feeds it follows (those it settles).
        self._hybrid_followed: dict[FeedId, dict[FeedId, None]] = {}
        # (follower, hybrid feed) -> how much of that feed's log it has applied.
        self._cursors: dict[tuple[FeedId, FeedId], int] = {}
        # (feed, activity id) -> bumped each time the feed starts owning it.
        self._epochs: dict[tuple[FeedId, str], int] = {}

    # -- writes ---------------------------------------------------------------

    def add_activity(self, feed: FeedId, activity: Activity) -> str:
        return self._add_activity(feed, activity, fan_out=True)

    def store_activity(self, feed: FeedId, activity: Activity) -> str:
        return self._add_activity(feed, activity, fan_out=False)

    def copy_to_followers(
        self, feed: FeedId, activity_id: str, followers: Sequence[FeedId]
    ) -> None:
        check_fan_out_chunk(followers)
        with self._lock:
            paths = self._entries.get(feed, {}).get(activity_id)
            if paths is None or not _is_own(paths):
                return
            path = Path(PathKind.FOLLOW, feed)
            following_feed = self._followers.get(feed, {})
            for follower in followers:
                if follower in following_feed:
                    self._settle(follower)
                    self._add_path(follower, activity_id, path)

    def fans_out_on_read(self, feed: FeedId) -> bool:
        with self._lock:
            return feed in self._pending

    def _add_activity(self, feed: FeedId, activity: Activity, fan_out: bool) -> str:
        with self._lock:
            aid = self._store(activity)
            self._add_path(feed, aid, DIRECT)
            if fan_out:
                self._fan_out(feed, aid)
            elif self._is_celebrity(feed):
                # Chunks would not be sent for it: its followers read it lazily.
                self._fan_out(feed, aid)
            for target in activity.to:
                if target == feed:
                    continue
                self._add_path(target, aid, Path(PathKind.TO, feed))
                self._fan_out(target, aid)
            return aid

    def remove_activity(self, feed: FeedId, foreign_id: str) -> None:
        with self._lock:
            self._settle(feed)
            held = self._entries.get(feed, {})
            for aid in [a for a in self._ids_by_foreign_id.get(foreign_id, ()) if a in held]:
                for path in list(held.get(aid, ())):
                    self._drop_path(feed, aid, path)

    def add_to_many(self, activity: Activity, feeds: Sequence[FeedId]) -> str:
        if len(feeds) > MAX_ADD_TO_MANY:
            raise FeedInputError(
                f"add_to_many takes at most {MAX_ADD_TO_MANY} feeds, not {len(feeds)}"
            )
        with self._lock:
            aid = self._store(activity)
            for feed in feeds:
                self._add_path(feed, aid, DIRECT)
            return aid

    def follow(
        self, source: FeedId, target: FeedId, activity_copy_limit: int = DEFAULT_COPY_LIMIT
    ) -> None:
        check_copy_limit(activity_copy_limit)
        Follow(source, target)  # raises FeedInputError for a self-follow
        with self._lock:
            self._follow(source, target, activity_copy_limit)

    def unfollow(self, source: FeedId, target: FeedId, keep_history: bool = False) -> None:
        with self._lock:
            self._unfollow(source, target, keep_history)

    def follow_many(
        self, follows: Iterable[Follow], activity_copy_limit: int = DEFAULT_COPY_LIMIT
    ) -> None:
        check_copy_limit(activity_copy_limit)
        items = list(follows)
        with self._lock:
            for item in items:
                self._follow(item.source, item.target, activity_copy_limit)

    def unfollow_many(self, follows: Iterable[Follow], keep_history: bool = False) -> None:
        items = list(follows)
        with self._lock:
            for item in items:
                self._unfollow(item.source, item.target, keep_history)

    # -- reads ----------------------------------------------------------------

    def read(
        self, feed: FeedId, limit: int = DEFAULT_READ_LIMIT, id_lt: str | None = None
    ) -> list[StoredActivity]:
        check_read_limit(limit)
        cursor = None if id_lt is None else activity_sort_key(id_lt)
        with self._lock:
            self._settle(feed)
            keys = self._timeline.get(feed)
            if keys is None:
                return []
            end = len(keys) if cursor is None else bisect_left(keys, cursor)
            return [self._stored(keys[i][1]) for i in range(end - 1, max(end - limit, 0) - 1, -1)]

    def followers(self, feed: FeedId, limit: int = 25, offset: int = 0) -> list[FeedId]:
        check_page(limit, offset)
        with self._lock:
            edges = self._followers.get(feed, {})
            return _page_of(edges, limit, offset)

    def following(self, feed: FeedId, limit: int = 25, offset: int = 0) -> list[FeedId]:
        check_page(limit, offset)
        with self._lock:
            edges = self._following.get(feed, {})
            return _page_of(edges, limit, offset)

    # -- internals (called with the lock held) --------------------------------

    def _store(self, activity: Activity) -> str:
        """Create or replace the activity's record; return its id."""
        key = activity_key(activity.foreign_id, activity.time)
        aid = key[1]
        extra = {str(name): str(value) for name, value in activity.extra.items()}
        record = self._records.get(aid)
        if record is None:
            self._records[aid] = _Record(
                key=key,
                actor=str(activity.actor),
                verb=str(activity.verb),
                object=str(activity.object),
                foreign_id=activity.foreign_id,
                time=activity.time,
                extra=extra,
                holders=set(),
            )
            self._ids_by_foreign_id.setdefault(activity.foreign_id, set()).add(aid)
        else:
            record.actor = str(activity.actor)
            record.verb = str(activity.verb)
            record.object = str(activity.object)
            record.extra = extra
        return aid

    def _stored(self, aid: str) -> StoredActivity:
        record = self._records[aid]
        return StoredActivity(
            id=aid,
            actor=record.actor,
            verb=record.verb,
            object=record.object,
            foreign_id=record.foreign_id,
            time=record.time,
            extra=dict(record.extra),
        )

    def _is_celebrity(self, feed: FeedId) -> bool:
        if feed in self._pending:
            return True
        threshold = self.celebrity_threshold
        if threshold is None or len(self._followers.get(feed, {})) <= threshold:
            return False
        self._pending[feed] = []
        for follower in self._followers.get(feed, {}):
            self._hybrid_followed.setdefault(follower, {})[feed] = None
        return True

    def _fan_out(self, feed: FeedId, aid: str) -> None:
        if self._is_celebrity(feed):
            self._pending[feed].append((aid, self._epochs[(feed, aid)]))
            return
        followers = self._followers.get(feed)
        if followers:
            self._copy_to(followers, aid, feed)

    def _settle(self, follower: FeedId) -> None:
        """Apply the fan-outs of the hybrid feeds ``follower`` follows that it
        has not seen yet, as eager fan-out would have applied them."""
        hybrid = self._hybrid_followed.get(follower)
        if not hybrid:
            return
        for feed in list(hybrid):
            log = self._pending[feed]
            edge = (follower, feed)
            cursor = self._cursors.get(edge, 0)
            if cursor == len(log):
                continue
            self._cursors[edge] = len(log)
            path = Path(PathKind.FOLLOW, feed)
            for aid, epoch in log[cursor:]:
                if self._epochs.get((feed, aid)) == epoch and aid in self._records:
                    self._add_path(follower, aid, path)

    def _follow(self, source: FeedId, target: FeedId, copy_limit: int) -> None:
        following = self._following.setdefault(source, {})
        if target in following:
            return
        self._settle(source)
        following[target] = None
        self._followers.setdefault(target, {})[source] = None
        log = self._pending.get(target)
        if log is not None:
            self._cursors[(source, target)] = len(log)
            self._hybrid_followed.setdefault(source, {})[target] = None
        own = self._own.get(target)
        if own is None or copy_limit == 0:
            return
        path = Path(PathKind.FOLLOW, target)
        # Materialised first: adding paths to ``source`` must not disturb the
        # iteration, even in the (odd) case of a follow cycle.
        newest = own[-copy_limit:]
        for key in reversed(newest):
            self._add_path(source, key[1], path)

    def _unfollow(self, source: FeedId, target: FeedId, keep_history: bool) -> None:
        following = self._following.get(source)
        if following is None or target not in following:
            return
        self._settle(source)
        self._cursors.pop((source, target), None)
        _discard_edge(self._hybrid_followed, source, target)
        del following[target]
        if not following:
            del self._following[source]
        followers = self._followers[target]
        del followers[source]
        if not followers:
            del self._followers[target]
        if keep_history:
            return
        path = Path(PathKind.FOLLOW, target)
        for aid in list(self._followed_ids.get((source, target), ())):
            self._drop_path(source, aid, path)

    def _copy_to(self, feeds: Iterable[FeedId], aid: str, source: FeedId) -> None:
        """``_add_path(feed, aid, follow path from source)`` for each of
        ``feeds``, in one loop: a fan-out, where most of the work goes."""
        path = Path(PathKind.FOLLOW, source)
        record = self._records[aid]
        key, holders = record.key, record.holders
        entries, timeline, followed_ids = self._entries, self._timeline, self._followed_ids
        copied = self._copies.setdefault(aid, {}).setdefault(source, set())
        for feed in feeds:
            held = entries.get(feed)
            if held is None:
                held = entries[feed] = {}
            paths = held.get(aid)
            if paths is None:
                held[aid] = {path}
                keys = timeline.get(feed)
                if keys is None:
                    timeline[feed] = [key]
                elif keys[-1] < key:
                    keys.append(key)
                else:
                    insort(keys, key)
                holders.add(feed)
            elif path in paths:
                continue
            else:
                paths.add(path)
            copied.add(feed)
            ids = followed_ids.get((feed, source))
            if ids is None:
                followed_ids[(feed, source)] = {aid}
            else:
                ids.add(aid)
        if not copied:
            _discard_copy_source(self._copies, aid, source)

    def _add_path(self, feed: FeedId, aid: str, path: Path) -> None:
        record = self._records[aid]
        held = self._entries.get(feed)
        if held is None:
            held = self._entries[feed] = {}
        paths = held.get(aid)
        own_path = path.kind is not PathKind.FOLLOW
        if paths is None:
            paths = held[aid] = set()
            keys = self._timeline.get(feed)
            if keys is None:
                self._timeline[feed] = [record.key]
            else:
                _insert_key(keys, record.key)
            record.holders.add(feed)
            was_own = False
        elif path in paths:
            return
        else:
            # Only an own path can make the feed own it (fan-out copies, the
            # bulk of all paths, skip the look).
            was_own = own_path and _is_own(paths)
        paths.add(path)
        source = path.source
        if source is not None:
            by_source = self._copies.get(aid)
            if by_source is None:
                by_source = self._copies[aid] = {}
            holders = by_source.get(source)
            if holders is None:
                holders = by_source[source] = set()
            holders.add(feed)
            if not own_path:
                edge = (feed, source)
                ids = self._followed_ids.get(edge)
                if ids is None:
                    ids = self._followed_ids[edge] = set()
                ids.add(aid)
        if own_path and not was_own:
            _insert_key(self._own.setdefault(feed, []), record.key)
            epoch_key = (feed, aid)
            self._epochs[epoch_key] = self._epochs.get(epoch_key, 0) + 1

    def _drop_path(self, feed: FeedId, aid: str, path: Path) -> None:
        held = self._entries.get(feed)
        paths = None if held is None else held.get(aid)
        if held is None or paths is None or path not in paths:
            return
        record = self._records[aid]
        was_own = _is_own(paths)
        paths.discard(path)
        if path.source is not None:
            self._discard_copy(aid, path.source, feed, paths)
            if path.kind is PathKind.FOLLOW:
                _discard(self._followed_ids, (feed, path.source), aid)
        lost_own = was_own and not _is_own(paths)
        if lost_own:
            _discard_key(self._own, feed, record.key)
        if not paths:
            del held[aid]
            if not held:
                del self._entries[feed]
            _discard_key(self._timeline, feed, record.key)
            record.holders.discard(feed)
            if not record.holders:
                del self._records[aid]
                _discard(self._ids_by_foreign_id, record.foreign_id, aid)
        if lost_own:
            self._drop_copies_from(feed, aid)

    def _discard_copy(self, aid: str, source: FeedId, feed: FeedId, paths: set[Path]) -> None:
        """Forget that ``feed`` holds a copy of ``aid`` from ``source``, unless
        it still does by the other kind of path (both ``to`` and ``follow``)."""
        if any(other.source == source for other in paths):
            return
        by_source = self._copies.get(aid)
        if by_source is None:
            return
        _discard(by_source, source, feed)
        if not by_source:
            del self._copies[aid]

    def _drop_copies_from(self, source: FeedId, aid: str) -> None:
        """``source`` no longer owns ``aid``: drop every copy made from it."""
        by_source = self._copies.get(aid)
        if by_source is None:
            return
        holders = by_source.pop(source, set())
        if not by_source:
            del self._copies[aid]
        for holder in holders:
            self._drop_path(holder, aid, Path(PathKind.TO, source))
            self._drop_path(holder, aid, Path(PathKind.FOLLOW, source))


def _discard(index: dict[K, set[V]], key: K, value: V) -> None:
    values = index.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del index[key]


def _discard_copy_source(
    copies: dict[str, dict[FeedId, set[FeedId]]], aid: str, source: FeedId
) -> None:
    by_source = copies.get(aid)
    if by_source is not None and not by_source.get(source, True):
        del by_source[source]
        if not by_source:
            del copies[aid]


def _discard_edge(index: dict[FeedId, dict[FeedId, None]], key: FeedId, value: FeedId) -> None:
    values = index.get(key)
    if values is not None:
        values.pop(value, None)
        if not values:
            del index[key]


def _insert_key(keys: list[SortKey], key: SortKey) -> None:
    """Insert ``key`` in the sorted list ``keys``: appended when it is the
    newest, as nearly every key is when the log is projected in order."""
    if not keys or keys[-1] < key:
        keys.append(key)
    else:
        insort(keys, key)


def _discard_key(index: dict[FeedId, list[SortKey]], feed: FeedId, key: SortKey) -> None:
    keys = index.get(feed)
    if keys is not None:
        at = bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            del keys[at]
        if not keys:
            del index[feed]


def _page_of(edges: dict[FeedId, None], limit: int, offset: int) -> list[FeedId]:
    """``limit`` of ``edges`` from ``offset``, newest first; any offset and
    limit (``islice`` takes none past ``sys.maxsize``)."""
    end = min(offset + limit, len(edges))
    return list(islice(reversed(edges), offset, end)) if offset < end else []

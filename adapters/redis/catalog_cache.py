"""A cache in Redis in front of the catalog, for the pages of feeds.

Every page of a feed needs its posts (text, time, entities) and their authors'
display names. The catalog (PostgreSQL in production) answers that in one
query, but it is a second server to reach per page. ``RedisCatalogCache``
keeps what pages show in Redis, beside the feeds, and answers a page from
there in one script call; it passes everything else, writes included, to the
catalog it wraps.

What it keeps, under ``<namespace>:{catalog}:`` (one hash slot, so the script
may read them together on a Redis Cluster too):

- ``p:<post id hex>``: a live post as a page shows it (its author's key, then
  the post as JSON), or ``-``, a tombstone, once the post is deleted;
- ``n:<username key>``: a known user's display name.

Both expire after ``ttl`` seconds; a miss is read from the catalog and cached.

Posts never change, so a cached post can only go stale by being deleted, and
a display name by a profile update or a new registration. Those writes set the
tombstone or the new name in Redis *before* the catalog's transaction, and
only for an event at a position the catalog has not passed yet (a replayed
older event must not bring back an older name). A reader fills a miss with
``SET NX``, which never overwrites: a reader that read the catalog before the
write cannot put the old post or name back. If the process dies between the
cache and the catalog, the event is projected again and writes the same.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import redis
from eventsourcing.persistence import Tracking
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from application.catalog import (
    AuthoredPost,
    Catalog,
    PostView,
    ShownPost,
    TrendingTag,
    UserView,
)
from application.feeds import FeedUnavailableError
from domain.tweet import TextEntity
from domain.user import username_key

DEFAULT_CACHE_TTL_SECONDS = 24 * 3600
TOMBSTONE = b"-"
# What redis-py raises when the server (or a cluster: its own exception) cannot serve.
_UNREACHABLE = (RedisError, RedisClusterException)
# Keys one script call reads at most (Lua's unpack has a bound).
SCRIPT_CHUNK = 1000

# A Lua function: the cached views under the view keys ``vkeys`` and, for each
# live one, its author's cached display name (``false`` where none), cache key
# prefix ``cp``. The name keys are known only once the views are read, so they
# are not declared; they carry the views' hash tag, so on a cluster they are in
# the slot the script runs in. The feeds' read script runs it too, to answer a
# page in one round trip (``RedisPageReader``).
SHOWN_LUA = """
local function shown(cp, vkeys)
  local views = redis.call('MGET', unpack(vkeys))
  local names, nkeys, at = {}, {}, {}
  for i, view in ipairs(views) do
    names[i] = false
    if view and view ~= '-' then
      nkeys[#nkeys + 1] = cp .. 'n:' .. string.sub(view, 1, string.find(view, '\\n', 1, true) - 1)
      at[#nkeys] = i
    end
  end
  if #nkeys > 0 then
    for j, name in ipairs(redis.call('MGET', unpack(nkeys))) do names[at[j]] = name end
  end
  return views, names
end
"""

# KEYS: cache keys. Deletes each but the tombstones, which stay true.
_FORGET_VIEWS = """
local gone = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) ~= '-' then gone = gone + redis.call('DEL', key) end
end
return gone
"""

# KEYS: post view keys; ARGV[1]: the cache's key prefix.
_SHOWN = (
    SHOWN_LUA
    + """
local views, names = shown(ARGV[1], KEYS)
return {views, names}
"""
)


class RedisCatalogCache(Catalog):
    """``catalog`` with the posts and display names that pages show cached
    in Redis (``shown_posts``); every other call goes to ``catalog``."""

    def __init__(
        self,
        catalog: Catalog,
        client: redis.Redis | RedisCluster,
        namespace: str = "chirp",
        ttl: int = DEFAULT_CACHE_TTL_SECONDS,
    ) -> None:
        if ttl < 1:
            raise ValueError(f"ttl must be at least 1 second, not {ttl}")
        if client.get_encoder().decode_responses:
            raise ValueError("the Redis client must be made with decode_responses=False")
        self.catalog = catalog
        self.client = client
        self.namespace = namespace
        self.ttl = ttl
        self.key_prefix = f"{namespace}:{{catalog}}:"
        self._name_prefix = f"{self.key_prefix}n:"
        self._shown = client.register_script(_SHOWN)
        self._forget_views = client.register_script(_FORGET_VIEWS)
        self._replid_key = f"{self.key_prefix}replid"

    # -- the page lookup ---------------------------------------------------------

    def shown_posts(self, post_ids: Iterable[UUID]) -> dict[UUID, ShownPost]:
        wanted = list(dict.fromkeys(post_ids))
        if not wanted:
            return {}
        try:
            views, names = self._lookup(wanted)
        except _UNREACHABLE:
            return self.catalog.shown_posts(wanted)  # the cache is down: the catalog still knows
        shown = self.shown_at(wanted, views, names)
        return {
            post_id: post for post_id, post in zip(wanted, shown, strict=True) if post is not None
        }

    def shown_at(
        self,
        post_ids: Sequence[UUID | None],
        views: Sequence[bytes | None],
        names: Sequence[bytes | None],
    ) -> list[ShownPost | None]:
        """What a page shows at each of its places: the live post
        ``post_ids[i]``, given what the cache held of it (its view and its
        author's name, as ``SHOWN_LUA`` reads them); None where there is no
        post or it is gone. The misses are read from the catalog and cached.
        By place, so that a page pairs each of its entries with its post
        directly (a post twice on a page is looked at twice)."""
        shown: list[ShownPost | None] = [None] * len(post_ids)
        missing: dict[UUID, list[int]] = {}  # post -> its places
        cached: list[int] = []
        for place, (post_id, view) in enumerate(zip(post_ids, views, strict=True)):
            if post_id is None or view == TOMBSTONE:
                continue
            if view is None:
                missing.setdefault(post_id, []).append(place)
            else:
                cached.append(place)
        nameless: dict[str, list[tuple[int, PostView]]] = {}  # author key -> its places
        if cached:
            # One JSON document for every cached post: one parse for the page.
            found = [cast(bytes, views[place]) for place in cached]
            data = json.loads(b"[" + b",".join(v[v.index(b"\n") + 1 :] for v in found) + b"]")
            for place, (author, text, posted_at, entities) in zip(cached, data, strict=True):
                post = PostView(
                    cast(UUID, post_ids[place]),
                    author,
                    text,
                    datetime.fromisoformat(posted_at),
                    tuple(TextEntity.from_dict(entity) for entity in entities),
                )
                name = names[place]
                if name is None:
                    nameless.setdefault(username_key(author), []).append((place, post))
                else:
                    shown[place] = ShownPost(post, name.decode())
        fills: list[tuple[str, bytes]] = []
        if missing:
            for post_id, authored in self.catalog.posts_with_authors(list(missing)).items():
                read = self._shown_and_filled(authored, fills)
                for place in missing[post_id]:
                    shown[place] = read
        if nameless:
            users = self.catalog.users(nameless)
            for key, places in nameless.items():
                user = users.get(key)
                if user is not None:
                    fills.append((self._name_prefix + key, user.display_name.encode()))
                for place, post in places:
                    shown[place] = ShownPost.of(post, user)
        if fills:
            self._fill(fills)
        return shown

    def _lookup(self, post_ids: Sequence[UUID]) -> tuple[list[bytes | None], list[bytes | None]]:
        """Each post's cached view (None on a miss) and its author's cached
        name: one script call per ``SCRIPT_CHUNK`` posts."""
        keys = [self._post_key(post_id) for post_id in post_ids]
        views: list[bytes | None] = []
        names: list[bytes | None] = []
        # Past one chunk (never for a page), one call each: redis-py's cluster
        # pipeline does not take scripts.
        for start in range(0, len(keys), SCRIPT_CHUNK):
            chunk_views, chunk_names = self._shown(
                keys=keys[start : start + SCRIPT_CHUNK], args=[self.key_prefix]
            )
            views += chunk_views
            names += chunk_names
        return views, names

    def _shown_and_filled(
        self, authored: AuthoredPost, fills: list[tuple[str, bytes]]
    ) -> ShownPost:
        """``authored`` as a page shows it, with its cache entries added to ``fills``."""
        post, author = authored.post, authored.author
        fills.append((self._post_key(post.id), self._view(post)))
        if author is not None:
            name_key = self._name_prefix + username_key(author.username)
            fills.append((name_key, author.display_name.encode()))
        return ShownPost.of(post, author)

    def _fill(self, entries: list[tuple[str, bytes]]) -> None:
        """Cache what was read from the catalog, never over what is there: a
        tombstone or a newer name written meanwhile wins. Best effort."""
        pipe = self.client.pipeline(transaction=False)
        for key, value in entries:
            pipe.set(key, value, ex=self.ttl, nx=True)
        with contextlib.suppress(*_UNREACHABLE):  # the next page reads the catalog again
            pipe.execute()

    # -- writes: the catalog's, with the cache told first ---------------------------

    def add_user(self, user: UserView, tracking: Tracking) -> None:
        if self._is_new(tracking):
            self._set(self._name_prefix + username_key(user.username), user.display_name.encode())
        self.catalog.add_user(user, tracking)

    def update_profile(
        self, username: str, display_name: str, bio: str, tracking: Tracking
    ) -> None:
        # The catalog ignores an update of a user it does not know: so does the cache.
        if self._is_new(tracking) and self.catalog.users([username]):
            self._set(self._name_prefix + username_key(username), display_name.encode())
        self.catalog.update_profile(username, display_name, bio, tracking)

    def record_follow(self, follower: str, followee: str, delta: int, tracking: Tracking) -> None:
        self.catalog.record_follow(follower, followee, delta, tracking)

    def add_post(self, post: PostView, tracking: Tracking) -> None:
        self.catalog.add_post(post, tracking)
        # Fresh posts are what pages show most: cache them now (a tombstone stays).
        self._fill([(self._post_key(post.id), self._view(post))])

    def remove_post(self, post_id: UUID, tracking: Tracking) -> None:
        if self._is_new(tracking):
            self._set(self._post_key(post_id), TOMBSTONE)
        self.catalog.remove_post(post_id, tracking)

    def insert_tracking(self, tracking: Tracking) -> None:
        self.catalog.insert_tracking(tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        # Asked at the start of each catch-up of the catalog's projection, so
        # on every poll of a process's log follower: the time to check that
        # Redis still holds what the cache wrote.
        self.forget_if_replaced()
        return self.catalog.max_tracking_id(application_name)

    def forget_if_replaced(self) -> int:
        """Empty the cache (but its tombstones) when Redis is no longer the
        data set the cache wrote to: a replica promoted by a failover, or a
        server restarted empty. Either may have lost the latest tombstones and
        names, which the catalog, past their events, never writes again.
        Emptying is always safe: readers fill it again from the catalog.

        Both change the server's replication id (``INFO replication``); the
        first process to see a new one (or none recorded yet) empties the
        cache. On a cluster the server is the primary holding the cache's
        slot (every key of the cache carries one hash tag). Returns how many
        entries went."""
        try:
            info, seen = self._replication_id_and_seen()
            current = str(info["master_replid"])
            if seen == current.encode():  # the usual case
                return 0
            # Swapped in: only the process that swaps the old id out empties.
            if self.client.set(self._replid_key, current, get=True) == current.encode():
                return 0
            gone = 0
            batch: list[bytes] = []
            for key in self.client.scan_iter(
                match=f"{_glob_escape(self.key_prefix)}[pn]:*", count=1000
            ):
                batch.append(key)
                if len(batch) == 1000:
                    gone += int(self._forget_views(keys=batch))
                    batch = []
            if batch:
                gone += int(self._forget_views(keys=batch))
            return gone
        except _UNREACHABLE:
            return 0  # out of reach: its writes say so

    def _replication_id_and_seen(self) -> tuple[dict[str, Any], bytes | None]:
        """``INFO replication`` of the server holding the cache, and the
        replication id recorded there: one round trip on a single server.
        On a cluster two: the ``GET`` first, since it is routed by its key
        (redis-py learns a failover's new primary from it), then ``INFO`` of
        the primary now serving that key's slot."""
        if isinstance(self.client, RedisCluster):
            seen = cast(bytes | None, self.client.get(self._replid_key))
            node = self.client.get_node_from_key(self._replid_key)  # type: ignore[no-untyped-call]
            return self.client.get_redis_connection(node).info("replication"), seen
        pipe = self.client.pipeline(transaction=False)
        pipe.info("replication")
        pipe.get(self._replid_key)
        info, seen = pipe.execute()
        return info, seen

    def close(self) -> None:
        self.catalog.close()

    # -- every other read goes to the catalog -------------------------------------

    def users(self, usernames: Iterable[str]) -> dict[str, UserView]:
        return self.catalog.users(usernames)

    def posts(self, post_ids: Iterable[UUID]) -> dict[UUID, PostView]:
        return self.catalog.posts(post_ids)

    def posts_with_authors(self, post_ids: Iterable[UUID]) -> dict[UUID, AuthoredPost]:
        return self.catalog.posts_with_authors(post_ids)

    def trending_hashtags(self, since: datetime, limit: int = 10) -> list[TrendingTag]:
        return self.catalog.trending_hashtags(since, limit)

    def popular_users(self, limit: int = 10, exclude: Iterable[str] = ()) -> list[UserView]:
        return self.catalog.popular_users(limit, exclude)

    # -- internals ----------------------------------------------------------------

    def _is_new(self, tracking: Tracking) -> bool:
        return not self.catalog.has_tracking_id(tracking.application_name, tracking.notification_id)

    def _set(self, key: str, value: bytes) -> None:
        """Overwrite ``key`` before the catalog's write; if Redis cannot be
        reached the write does not happen either, and is projected again later."""
        try:
            self.client.set(key, value, ex=self.ttl)
        except _UNREACHABLE as error:
            raise FeedUnavailableError(
                f"the catalog cache in Redis is unreachable: {error}"
            ) from error

    def _post_key(self, post_id: UUID) -> str:
        return f"{self.key_prefix}p:{post_id.hex}"

    @staticmethod
    def _view(post: PostView) -> bytes:
        document: list[Any] = [
            post.author,
            post.text,
            post.posted_at.isoformat(),
            [entity.as_dict() for entity in post.entities],
        ]
        return (
            f"{username_key(post.author)}\n".encode()
            + json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        )


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a ``SCAN MATCH`` pattern."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)

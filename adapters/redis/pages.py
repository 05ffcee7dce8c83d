"""Pages of Redis feeds with what they show, in one round trip.

The feeds (``RedisFeedProvider``) and the catalog's cache (``RedisCatalogCache``)
share one Redis server: the feed's read script also reads what the cache holds
of each post it returns, so a warm page costs one round trip instead of two.
Posts the cache misses are read from the catalog and cached, as
``RedisCatalogCache.shown_posts`` does. A page the script cannot answer alone
(past a timeline's horizon; any page on a Redis Cluster, where a script stays
in one slot) asks the cache in a second round trip.
"""

from __future__ import annotations

from adapters.redis.catalog_cache import RedisCatalogCache
from adapters.redis.feeds import RedisFeedProvider
from application.feed_names import POST_PREFIX, post_id_from_foreign_id
from application.feeds import FeedId
from application.pages import PageEntry, PageReader, page_entries


class RedisPageReader(PageReader):
    def __init__(self, provider: RedisFeedProvider, cache: RedisCatalogCache) -> None:
        self.provider = provider
        self.cache = cache

    def read(self, feed: FeedId, limit: int, id_lt: str | None) -> list[PageEntry]:
        activities, cached = self.provider.read_with_catalog_cache(
            feed, limit, id_lt, (self.cache.key_prefix, POST_PREFIX)
        )
        post_ids = [post_id_from_foreign_id(activity.foreign_id) for activity in activities]
        if cached is None:
            posts = self.cache.shown_posts(pid for pid in post_ids if pid is not None)
            return page_entries(activities, post_ids, posts)
        views = [view for view, _ in cached]
        names = [name for _, name in cached]
        return list(zip(activities, self.cache.shown_at(post_ids, views, names), strict=True))

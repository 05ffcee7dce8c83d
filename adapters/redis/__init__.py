"""Redis adapters: the feed provider on redis-py (a single Redis 7 server, or Redis Cluster)."""

from adapters.redis.feeds import RedisFeedProvider

__all__ = ["RedisFeedProvider"]

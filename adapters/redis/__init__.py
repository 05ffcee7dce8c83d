"""Redis adapters: the feed provider on redis-py (standalone Redis 7, cluster-ready keys)."""

from adapters.redis.feeds import RedisFeedProvider

__all__ = ["RedisFeedProvider"]

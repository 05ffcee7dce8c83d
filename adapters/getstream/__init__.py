"""GetStream adapters: Chirp's feeds on GetStream's Feeds v2 API (stream-python 5.x)."""

from adapters.getstream.feeds import (
    DEFAULT_FEED_GROUPS,
    GetStreamConfigurationError,
    GetStreamFeedProvider,
    RetryPolicy,
)

__all__ = [
    "DEFAULT_FEED_GROUPS",
    "GetStreamConfigurationError",
    "GetStreamFeedProvider",
    "RetryPolicy",
]

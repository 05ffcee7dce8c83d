"""The fan-out port: who copies a stored activity to a chunk of followers.

The feed projector stores a post by an account with many followers once
(``FeedProvider.store_activity``) and hands its followers over in chunks;
each chunk is then copied by ``FeedProvider.copy_to_followers``, which is
idempotent and skips followers that stopped following or an activity removed
since, so a chunk may run late, in any order, or more than once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from application.feeds import FeedId, FeedProvider

DEFAULT_FAN_OUT_CHUNK = 1000


class FanOut(ABC):
    """Delivers one chunk of a fan-out, now or later."""

    @abstractmethod
    def dispatch(self, feed: FeedId, activity_id: str, followers: Sequence[FeedId]) -> None:
        """Have ``feed``'s activity ``activity_id`` copied to ``followers``."""


class InProcessFanOut(FanOut):
    """Copies each chunk at once, in the caller's thread (embedded mode)."""

    def __init__(self, provider: FeedProvider) -> None:
        self.provider = provider

    def dispatch(self, feed: FeedId, activity_id: str, followers: Sequence[FeedId]) -> None:
        self.provider.copy_to_followers(feed, activity_id, followers)

"""The feed provider contract, run against the in-memory adapter, with and
without hybrid fan-out (a threshold of 1 makes nearly every feed with
followers a celebrity, fanned out at read time: every test must still pass)."""

from __future__ import annotations

from adapters.inmemory import InMemoryFeedProvider
from application.feeds import FeedProvider
from tests.contract.feed_provider_contract import FeedProviderContract


class TestInMemoryFeedProvider(FeedProviderContract):
    def make_provider(self) -> FeedProvider:
        return InMemoryFeedProvider()


class TestInMemoryFeedProviderHybrid(FeedProviderContract):
    def make_provider(self) -> FeedProvider:
        return InMemoryFeedProvider(celebrity_threshold=1)

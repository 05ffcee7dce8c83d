"""The feed provider contract, run against the in-memory adapter."""

from __future__ import annotations

from adapters.inmemory import InMemoryFeedProvider
from application.feeds import FeedProvider
from tests.contract.feed_provider_contract import FeedProviderContract


class TestInMemoryFeedProvider(FeedProviderContract):
    def make_provider(self) -> FeedProvider:
        return InMemoryFeedProvider()

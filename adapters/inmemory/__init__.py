"""In-process adapters, for tests, the demo and single-process deployments."""

from adapters.inmemory.feeds import InMemoryFeedProvider

__all__ = ["InMemoryFeedProvider"]

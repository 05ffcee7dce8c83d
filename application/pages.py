"""The page reader port: a page of a feed together with what it shows.

A page is read from the feed provider, then enriched from the catalog
(``Catalog.shown_posts``). Where both live in one store, an adapter can answer
the two at once, in one round trip; ``FeedQueries`` uses such a reader when
the wiring gives it one, and the provider and catalog otherwise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from uuid import UUID

from application.catalog import ShownPost
from application.feeds import FeedId, StoredActivity


class PageReader(ABC):
    @abstractmethod
    def read(
        self, feed: FeedId, limit: int, id_lt: str | None
    ) -> tuple[list[StoredActivity], dict[UUID, ShownPost]]:
        """``FeedProvider.read(feed, limit, id_lt)``, with ``Catalog.shown_posts``
        of the posts its activities refer to (``tweet:<id>`` foreign ids)."""

"""The page reader port: a page of a feed together with what it shows.

A page is read from the feed provider, then enriched from the catalog
(``Catalog.shown_posts``). Where both live in one store, an adapter can answer
the two at once, in one round trip; ``FeedQueries`` uses such a reader when
the wiring gives it one, and the provider and catalog otherwise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from uuid import UUID

from application.catalog import ShownPost
from application.feeds import FeedId, StoredActivity

# An activity of a page and the live post it shows: None when it shows none
# (not a post, or a post deleted since it was fanned out).
PageEntry = tuple[StoredActivity, ShownPost | None]


class PageReader(ABC):
    @abstractmethod
    def read(self, feed: FeedId, limit: int, id_lt: str | None) -> list[PageEntry]:
        """The activities of ``FeedProvider.read(feed, limit, id_lt)``, each
        with the ``Catalog.shown_posts`` entry of the post it refers to (a
        ``tweet:<id>`` foreign id)."""


def page_entries(
    activities: Sequence[StoredActivity],
    post_ids: Sequence[UUID | None],
    posts: Mapping[UUID, ShownPost],
) -> list[PageEntry]:
    """Each activity with its post (``post_ids``, one per activity) among ``posts``."""
    return [
        (activity, None if post_id is None else posts.get(post_id))
        for activity, post_id in zip(activities, post_ids, strict=True)
    ]

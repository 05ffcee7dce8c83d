"""Chirp as one object: commands, queries and the projections that join them.

This is what the web and the CLI call. It is assembled from adapters by the
composition root (``chirp.bootstrap``). In synchronous mode (the embedded
default and the tests) each command projects its own events before returning,
so the author sees their post at once; a background follower also picks up
events written by other processes sharing the event store.

A command succeeded once its events are stored: projecting them afterwards
never raises into the command. An event a projection fails on is retried in
the background (and by later commands, once its retry is due) until it
projects; ``projections()`` says where each projection is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from application.catalog import Catalog
from application.commands import ChirpApplication
from application.feeds import FeedProvider
from application.log_follower import LogFollower
from application.pages import PageReader
from application.projection_status import ProjectionStatus
from application.projectors import CatalogProjector, FeedProjector
from application.queries import FeedQueries
from domain.user import User

logger = logging.getLogger(__name__)


class Chirp:
    def __init__(
        self,
        commands: ChirpApplication,
        catalog: Catalog,
        feed_projector: FeedProjector,
        project_synchronously: bool = True,
        request_feed_projection: Callable[[], object] | None = None,
        page_reader: PageReader | None = None,
    ) -> None:
        self.commands = commands
        self.catalog = catalog
        self.provider: FeedProvider = feed_projector.provider
        self.queries = FeedQueries(self.provider, catalog, page_reader)
        self.catalog_follower = LogFollower(commands, CatalogProjector(catalog), name="catalog")
        self.feed_follower = LogFollower(commands, feed_projector, name="feeds")
        self.project_synchronously = project_synchronously
        # Set when workers elsewhere project the feeds (Dramatiq): commands
        # then ask them to, and this process never projects feeds itself.
        self.request_feed_projection = request_feed_projection

    # -- projections ---------------------------------------------------------

    def sync(self) -> None:
        """Project every event written so far, now, even an event whose
        retry is not due yet (a failure is logged, not raised). The catalog
        goes first, so a feed rarely points at a post the catalog does not
        know yet (and such a post is not shown until it does)."""
        self.catalog_follower.try_catch_up(force=True)
        if self.request_feed_projection is not None:
            self._request_feed_projection()
        else:
            self.feed_follower.try_catch_up(force=True)

    def projections(self) -> list[ProjectionStatus]:
        """Where each projection is: the catalog's and the feeds'."""
        return [self.catalog_follower.status(), self.feed_follower.status()]

    def start_following(self, poll_interval: float = 0.2) -> None:
        self.catalog_follower.start(poll_interval)
        if self.request_feed_projection is None:
            self.feed_follower.start(poll_interval)

    def close(self) -> None:
        self.feed_follower.stop()
        self.catalog_follower.stop()
        self.commands.close()
        self.catalog.close()

    def _after_command(self) -> None:
        """Project the command's events now. The command itself has already
        succeeded, whatever happens here: an event that cannot be projected
        now (a service out of reach, a failing event) is retried by the
        background follower and later commands, and reported meanwhile."""
        if not self.project_synchronously:
            return  # bulk loads: the followers or workers catch up later
        self.catalog_follower.try_catch_up()
        if self.request_feed_projection is not None:
            self._request_feed_projection()
        else:
            self.feed_follower.try_catch_up()

    def _request_feed_projection(self) -> None:
        assert self.request_feed_projection is not None
        try:
            self.request_feed_projection()
        except Exception:  # the broker is down; the next request catches up
            logger.exception("could not ask the feed workers to project; later commands will")

    # -- commands ------------------------------------------------------------

    def register(self, username: str, display_name: str = "") -> User:
        user = self.commands.register(username, display_name)
        self._after_command()
        return user

    def update_profile(self, username: str, display_name: str, bio: str) -> None:
        self.commands.update_profile(username, display_name, bio)
        self._after_command()

    def follow(self, follower: str, followee: str) -> None:
        self.commands.follow(follower, followee)
        self._after_command()

    def unfollow(self, follower: str, followee: str) -> None:
        self.commands.unfollow(follower, followee)
        self._after_command()

    def post(
        self, author: str, text: str, posted_at: datetime | None = None, key: UUID | None = None
    ) -> UUID:
        post_id = self.commands.post(author, text, posted_at, key)
        self._after_command()
        return post_id

    def delete_post(self, post_id: UUID, by: str) -> None:
        self.commands.delete_post(post_id, by)
        self._after_command()

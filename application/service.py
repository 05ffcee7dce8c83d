"""Chirp as one object: commands, queries and the projections that join them.

This is what the web and the CLI call. It is assembled from adapters by the
composition root (``chirp.bootstrap``).

A command only stores its events: it succeeded once they are stored, and it
waits for no projection. Each projection (the catalog, the feeds) runs once,
in the process holding its lease, in a background thread that a command
written here wakes at once. Reads see their own writes: a thread's reads
(``queries``) first wait, briefly, until the projections have reached the
thread's last write, or the position ``read_after`` gave (the web carries a
person's last write from request to request). Waiting projects the events
itself where the lease is free, so a Chirp with no background thread (tests,
the CLI) reads what it wrote too.

An event a projection fails on is retried in the background until it
projects; ``projections()`` says where each projection is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from application.catalog import Catalog
from application.commands import ChirpApplication
from application.feeds import FeedProvider
from application.leases import Lease
from application.log_follower import LogFollower
from application.pages import PageReader
from application.projection_status import ProjectionStatus
from application.projectors import CatalogProjector, FeedProjector
from application.queries import FeedQueries
from domain.user import User

logger = logging.getLogger(__name__)

# How long a read waits for the projections to reach its own writes before
# it shows what they have (a projection stuck or far behind).
READ_WAIT_SECONDS = 2.0
# How long ``sync`` waits for projections that another process runs.
SYNC_WAIT_SECONDS = 30.0


class Chirp:
    def __init__(
        self,
        commands: ChirpApplication,
        catalog: Catalog,
        feed_projector: FeedProjector,
        read_own_writes: bool = True,
        request_feed_projection: Callable[[], object] | None = None,
        page_reader: PageReader | None = None,
        catalog_lease: Lease | None = None,
        feed_lease: Lease | None = None,
    ) -> None:
        self.commands = commands
        self.catalog = catalog
        self.provider: FeedProvider = feed_projector.provider
        self._queries = FeedQueries(self.provider, catalog, page_reader)
        self.catalog_follower = LogFollower(
            commands, CatalogProjector(catalog), name="catalog", lease=catalog_lease
        )
        self.feed_follower = LogFollower(commands, feed_projector, name="feeds", lease=feed_lease)
        self.read_own_writes = read_own_writes
        # Set when workers elsewhere project the feeds (Dramatiq): commands
        # then ask them to, and this process never projects feeds itself.
        self.request_feed_projection = request_feed_projection
        self._reader = threading.local()

    # -- reads -----------------------------------------------------------------

    @property
    def queries(self) -> FeedQueries:
        """The queries, once the projections have reached what this thread
        must see (at most ``READ_WAIT_SECONDS``)."""
        position = self.read_position()
        if position and self.read_own_writes:
            for follower in (self.catalog_follower, self.feed_follower):
                follower.wait_for(position, READ_WAIT_SECONDS)
        return self._queries

    def read_after(self, position: int) -> None:
        """This thread's reads show at least the events up to ``position``
        (a person's last write, as the web carries it). A thread's position
        only moves on: one serving many people waits for the latest write
        any of them made, which the projections have usually passed."""
        if position > self.read_position():
            self._reader.position = position

    def read_position(self) -> int:
        """The position this thread's reads wait for: its own last write, or
        what ``read_after`` gave if later."""
        position: int = getattr(self._reader, "position", 0)
        return position

    # -- projections ---------------------------------------------------------

    def sync(self, timeout: float = SYNC_WAIT_SECONDS) -> None:
        """Project every event written so far, now, even an event whose
        retry is not due yet (a failure is logged, not raised); where another
        process holds a projection's lease, wait for it (at most ``timeout``
        seconds). The catalog goes first, so a feed rarely
        points at a post the catalog does not know yet (and such a post is
        not shown until it does)."""
        head = self.commands.recorder.max_notification_id() or 0
        self.catalog_follower.wait_for(head, timeout, force=True)
        if self.request_feed_projection is not None:
            self._request_feed_projection()
        else:
            self.feed_follower.wait_for(head, timeout, force=True)

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
        """The command's events are stored: this thread's reads will wait
        for them, and the projections running here are woken (the feed
        workers asked) to project them. Nothing here can fail the command."""
        self.read_after(self.commands.last_saved_position())
        self.catalog_follower.nudge()
        if self.request_feed_projection is not None:
            self._request_feed_projection()
        else:
            self.feed_follower.nudge()

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

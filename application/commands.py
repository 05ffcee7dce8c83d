"""The command side: an eventsourcing application that stores users and posts.

Each command loads aggregates, applies a domain rule and saves the new events
in one atomic write. A rejected command raises a ``DomainError`` and saves
nothing. Persistence (in memory, SQLite, PostgreSQL) is chosen by the ``env``
given at construction, as eventsourcing does.

What cannot change is remembered: a registered user stays registered under
one spelling, so the canonical names of authors, followees and mentioned
users are read once per process (a name not registered yet is asked again
each time). Aggregates come from eventsourcing's cache (``chirp.bootstrap``
sizes it), brought up to date with the events stored since. A command that
loses a race to another writer of the same aggregate runs again on the newer
state, and says so (``ConcurrentChange``) if it keeps losing.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError, RecordConflictError, Recording

from domain.errors import (
    DomainError,
    PostKeyReused,
    TweetNotFound,
    UsernameTaken,
    UserNotFound,
)
from domain.tweet import Tweet, mentioned_usernames_in, post_id_for_key
from domain.user import User, check_username, username_key

T = TypeVar("T")
CONFLICT_RETRIES = 5
# Canonical usernames remembered per process (about 200 bytes each).
REGISTERED_NAMES_CACHED = 100_000


class ConcurrentChange(DomainError):
    """Other writers kept changing what a command changes, on every attempt:
    nothing was stored, and trying again is safe."""


def known_mentions(text: str, registered_name: Callable[[str], str]) -> dict[str, str]:
    """The users ``text`` mentions that ``registered_name`` finds: lower-cased
    name -> canonical name (a post records them, so a replay resolves them
    alike)."""
    known: dict[str, str] = {}
    for name in dict.fromkeys(username_key(n) for n in mentioned_usernames_in(text)):
        try:
            known[name] = registered_name(name)
        except DomainError:  # not a registered (or even valid) username
            continue
    return known


class ChirpApplication(Application[UUID]):
    """Registers users, records follows, posts and deletes posts."""

    name = "chirp"
    # A user who follows thousands would otherwise be rebuilt from thousands
    # of events on each command.
    snapshotting_intervals = {User: 100}

    def __init__(
        self, env: dict[str, str] | None = None, names_cached: int = REGISTERED_NAMES_CACHED
    ) -> None:
        super().__init__(env=env)
        self._saved = threading.local()
        # Only found names are kept: a lookup that raises is not cached.
        self._registered_name = functools.lru_cache(maxsize=names_cached)(self._read_name)

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """eventsourcing's save, noting the position of the last event this
        thread stored (``last_saved_position``)."""
        recordings = super().save(*objs, **kwargs)
        if recordings:
            self._saved.position = max(recording.notification.id for recording in recordings)
        return recordings

    def last_saved_position(self) -> int:
        """The position in the log of the last event this thread stored (0
        when none)."""
        position: int = getattr(self._saved, "position", 0)
        return position

    # -- users ---------------------------------------------------------------

    def register(self, username: str, display_name: str = "") -> User:
        user = User.register(username, display_name)
        try:
            self.save(user)
        except IntegrityError:
            raise UsernameTaken(f"username {username!r} is already taken") from None
        return user

    def get_user(self, username: str) -> User:
        check_username(username)
        try:
            user: User = self.repository.get(User.create_id(username))
        except AggregateNotFoundError:
            raise UserNotFound(f"there is no user @{username}") from None
        if not isinstance(user, User):  # pragma: no cover - ids are namespaced
            raise UserNotFound(f"there is no user @{username}")
        return user

    def registered_name(self, username: str) -> str:
        """The canonical spelling of the registered user ``username`` names
        in any case; ``UserNotFound`` if there is none (yet)."""
        check_username(username)
        return self._registered_name(username_key(username))

    def _read_name(self, key: str) -> str:
        """The registration's username, read from the user's first event."""
        for event in self.events.get(User.create_id(key), limit=1):
            if isinstance(event, User.Registered):
                return event.username
        raise UserNotFound(f"there is no user @{key}")

    def update_profile(self, username: str, display_name: str, bio: str) -> None:
        def change() -> None:
            user = self.get_user(username)
            user.update_profile(display_name, bio)
            self.save(user)

        self._retry_on_conflict(change)

    def follow(self, follower: str, followee: str) -> None:
        def change() -> None:
            user = self.get_user(follower)
            user.follow(self.registered_name(followee))
            self.save(user)

        self._retry_on_conflict(change)

    def unfollow(self, follower: str, followee: str) -> None:
        def change() -> None:
            user = self.get_user(follower)
            target_name = self._canonical_name_or_given(followee)
            user.unfollow(target_name)
            self.save(user)

        self._retry_on_conflict(change)

    # -- posts ---------------------------------------------------------------

    def post(
        self, author: str, text: str, posted_at: datetime | None = None, key: UUID | None = None
    ) -> UUID:
        """Publish ``text`` by ``author``; return the new post's id.

        Mentions are resolved to registered users here and recorded in the
        event, so replaying the log later gives the same feeds.

        ``key`` (a form's token) makes a resubmit land once: the post's id is
        derived from the author and the key, so the event store refuses a
        second post under it, and the first post's id is returned instead."""
        author = self.registered_name(author)
        known = known_mentions(text, self.registered_name)
        post_id = None if key is None else post_id_for_key(author, key)
        tweet = Tweet.post(author, text, known, posted_at, post_id)
        try:
            self.save(tweet)
        except IntegrityError:
            if key is None:
                raise
            return self._sent_before(tweet)
        return tweet.id

    def _sent_before(self, tweet: Tweet) -> UUID:
        """The id of the post stored before under ``tweet``'s id, when it is the
        same author's same text; a key sent again with another text is refused."""
        first = self.get_post(tweet.id)
        if username_key(first.author) != username_key(tweet.author) or first.text != tweet.text:
            raise PostKeyReused(
                "this form was already sent with another text; press Post again to post this one"
            )
        return first.id

    def get_post(self, post_id: UUID) -> Tweet:
        try:
            tweet: Tweet = self.repository.get(post_id)
        except AggregateNotFoundError:
            raise TweetNotFound(f"there is no post {post_id}") from None
        if not isinstance(tweet, Tweet):
            raise TweetNotFound(f"there is no post {post_id}")
        return tweet

    def delete_post(self, post_id: UUID, by: str) -> None:
        def change() -> None:
            tweet = self.get_post(post_id)
            tweet.delete(by)
            self.save(tweet)

        self._retry_on_conflict(change)

    # -- many commands at once (bulk loads: application.command_batch) --------

    def save_in_order(
        self, events: Sequence[DomainEventProtocol[UUID]], aggregates: Iterable[Aggregate]
    ) -> None:
        """Store ``events``, collected from ``aggregates`` by many commands,
        in the order given, in one atomic write (``save`` would group them
        by aggregate). Then each aggregate that passed a multiple of its
        snapshotting interval is snapshotted, from memory, at its version."""
        recordings = self.events.put(events)
        if recordings:
            self._saved.position = max(recording.notification.id for recording in recordings)
        if self.snapshots is None:
            return
        first: dict[UUID, int] = {}
        for event in events:
            first.setdefault(event.originator_id, event.originator_version)
        snapshots = []
        for aggregate in aggregates:
            interval = self.snapshotting_intervals.get(type(aggregate))
            since = first.get(aggregate.id)
            if (
                interval
                and since is not None
                and aggregate.version // interval > (since - 1) // interval
            ):
                snapshots.append(type(aggregate).Snapshot.take(aggregate))
        if snapshots:
            self.snapshots.put(snapshots)

    # -- helpers -------------------------------------------------------------

    def _canonical_name_or_given(self, username: str) -> str:
        try:
            return self.registered_name(username)
        except UserNotFound:
            return username

    @staticmethod
    def _retry_on_conflict(change: Callable[[], T]) -> T:
        """Run ``change`` again when another writer saved the same aggregate
        first: it loads the aggregate again, brought up to date with what
        that writer stored, so the rule is checked against the newer state.
        After ``CONFLICT_RETRIES`` lost races, ``ConcurrentChange``."""
        for _ in range(CONFLICT_RETRIES):
            try:
                return change()
            except RecordConflictError:
                continue
        raise ConcurrentChange(
            "someone else changed this at the same moment; nothing was saved, please try again"
        )

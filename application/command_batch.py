"""Many commands applied in memory, then stored in one atomic write (bulk loads).

A ``CommandBatch`` takes the commands of ``ChirpApplication`` and applies each
through the same aggregate methods, so every domain rule is checked as it is
there; but it keeps the users and posts it has loaded or created in memory
instead of rebuilding them from the store for each command, and collects the
new events in command order until :meth:`CommandBatch.save` stores them all at
once (``ChirpApplication.save_in_order``).

A refused command raises its ``DomainError`` and leaves nothing pending. A save
that another writer got in first (a name registered, a user changed meanwhile)
raises as ``Application.save`` does, having stored nothing: the caller forgets
this batch (:meth:`CommandBatch.forget`) and applies its commands again the
ordinary way, which checks them against what the store holds now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol

from application.commands import ChirpApplication, known_mentions
from domain.errors import UsernameTaken, UserNotFound
from domain.tweet import Tweet
from domain.user import User, check_username, username_key


class CommandBatch:
    """Commands of ``ChirpApplication`` held in memory until :meth:`save`."""

    def __init__(self, commands: ChirpApplication) -> None:
        self.commands = commands
        self._users: dict[str, User] = {}  # by username_key
        self._posts: dict[UUID, Tweet] = {}
        self._events: list[DomainEventProtocol[Any]] = []
        self._changed: dict[UUID, Aggregate] = {}

    @property
    def pending(self) -> int:
        """How many new events wait for :meth:`save`."""
        return len(self._events)

    # -- commands (as ChirpApplication's) --------------------------------------

    def register(self, username: str, display_name: str = "") -> User:
        user = User.register(username, display_name)
        try:
            self.get_user(username)
        except UserNotFound:
            pass
        else:
            raise UsernameTaken(f"username {username!r} is already taken")
        self._users[username_key(username)] = user
        self._collect(user)
        return user

    def follow(self, follower: str, followee: str) -> None:
        user = self.get_user(follower)
        target = self.get_user(followee)
        user.follow(target.username)
        self._collect(user)

    def unfollow(self, follower: str, followee: str) -> None:
        user = self.get_user(follower)
        try:
            target_name = self.get_user(followee).username
        except UserNotFound:
            target_name = followee
        user.unfollow(target_name)
        self._collect(user)

    def post(self, author: str, text: str, posted_at: datetime | None = None) -> UUID:
        user = self.get_user(author)
        known = known_mentions(text, lambda name: self.get_user(name).username)
        tweet = Tweet.post(user.username, text, known, posted_at)
        self._posts[tweet.id] = tweet
        self._collect(tweet)
        return tweet.id

    def delete_post(self, post_id: UUID, by: str) -> None:
        tweet = self.get_post(post_id)
        tweet.delete(by)
        self._collect(tweet)

    # -- aggregates, from memory or else from the store ------------------------

    def get_user(self, username: str) -> User:
        check_username(username)
        key = username_key(username)
        user = self._users.get(key)
        if user is None:
            user = self._users[key] = self.commands.get_user(username)
        return user

    def get_post(self, post_id: UUID) -> Tweet:
        tweet = self._posts.get(post_id)
        if tweet is None:
            tweet = self._posts[post_id] = self.commands.get_post(post_id)
        return tweet

    # -- storing ---------------------------------------------------------------

    def save(self) -> None:
        """Store every pending event, in command order, in one atomic write.
        Raises what ``Application.save`` raises (an ``IntegrityError`` when
        another writer got there first), having stored nothing."""
        if not self._events:
            return
        self.commands.save_in_order(self._events, self._changed.values())
        self._events.clear()
        self._changed.clear()

    def forget_posts(self) -> None:
        """Drop the posts held once they are stored (a delete reads its post
        from the store again): a long load keeps only its users in memory."""
        if self._events:
            raise RuntimeError("forget_posts() before save() would lose pending events")
        self._posts.clear()

    def forget(self) -> None:
        """Drop what is pending and every aggregate held: the next commands
        read the store again."""
        self._users.clear()
        self._posts.clear()
        self._events.clear()
        self._changed.clear()

    def _collect(self, aggregate: Aggregate) -> None:
        self._events.extend(aggregate.collect_events())
        self._changed[aggregate.id] = aggregate

"""Projectors: turn the event log into feeds and into the catalog.

A projector's ``process(event, tracking)`` applies one event and records the
event's position. The catalog projector writes both in one transaction (exactly
once). The feed projector cannot join a transaction with a remote feed service,
so it makes only idempotent feed writes and records the position after them: a
crash in between replays the event, which changes nothing the second time.

The feed projector also projects a whole batch at once (``process_batch``, for
replays): the same feed writes in the same order, consecutive follows grouped
into one ``follow_many``, and one position recorded after the batch's writes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking, TrackingRecorder

from application.catalog import Catalog, PostView, UserView
from application.fanout import DEFAULT_FAN_OUT_CHUNK, FanOut
from application.feed_names import (
    follow_foreign_id,
    hashtag_feed,
    mentions_feed,
    notifications_feed,
    post_foreign_id,
    timeline_feed,
    user_feed,
)
from application.feeds import (
    DEFAULT_COPY_LIMIT,
    MAX_ADD_TO_MANY,
    Activity,
    FeedId,
    FeedProvider,
    Follow,
)
from domain.tweet import TextEntity, Tweet, hashtags_of, mentions_of
from domain.user import User, username_key

POST_VERB = "tweet"
FOLLOW_VERB = "follow"


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def post_activity(event: Tweet.Posted) -> Activity:
    """The activity a post becomes, with its ``to`` targets: each hashtag
    feed, and the timeline and mentions feed of each mentioned user."""
    entities = [TextEntity.from_dict(data) for data in event.entities]
    targets: list[FeedId] = [hashtag_feed(tag) for tag in hashtags_of(entities)]
    for mentioned in mentions_of(entities):
        if username_key(mentioned) != username_key(event.author):
            targets += [
                timeline_feed(mentioned),
                mentions_feed(mentioned),
                notifications_feed(mentioned),
            ]
    foreign_id = post_foreign_id(event.originator_id)
    return Activity(
        actor=event.author,
        verb=POST_VERB,
        object=foreign_id,
        foreign_id=foreign_id,
        time=naive_utc(event.posted_at),
        to=tuple(dict.fromkeys(targets)),
    )


def follow_activity(event: User.Followed) -> Activity:
    """The "new follower" notification of ``event.followee``."""
    foreign_id = follow_foreign_id(event.follower, event.followee)
    return Activity(
        actor=event.follower,
        verb=FOLLOW_VERB,
        object=f"user:{username_key(event.followee)}",
        foreign_id=foreign_id,
        time=naive_utc(event.timestamp),
    )


class Projector(ABC):
    """Applies events of the log to one projection, recording their positions."""

    def __init__(self, tracking_recorder: TrackingRecorder) -> None:
        self.tracking_recorder = tracking_recorder

    @abstractmethod
    def process(self, event: DomainEventProtocol[Any], tracking: Tracking) -> None: ...


class BatchStopped(Exception):
    """Projecting a batch stopped at its event number ``index`` (from 0), on
    ``error``: the events before it were applied. When ``error`` came from
    recording the position (``recording``), ``index`` is the last event
    applied and the position stayed where the batch began; otherwise the
    position of the event before ``index`` was recorded (if there is one)."""

    def __init__(self, index: int, error: Exception, recording: bool = False) -> None:
        super().__init__(f"event {index} of the batch: {type(error).__name__}: {error}")
        self.index = index
        self.error = error
        self.recording = recording


class BatchProjector(Projector):
    """A projector that can also project many events at once."""

    @abstractmethod
    def process_batch(self, batch: Sequence[tuple[DomainEventProtocol[Any], Tracking]]) -> None:
        """Apply each event of ``batch`` (in log order) as :meth:`process`
        would one by one, then record the last one's position, once. An event
        that fails stops the batch: the events before it stay applied, their
        position is recorded, and :class:`BatchStopped` names it."""


class FeedProjector(BatchProjector):
    """Keeps every feed in a ``FeedProvider`` up to date with the log.

    With a ``fan_out`` and a provider that supports it, a post by an account
    with more than ``fan_out_chunk`` followers is stored once and its
    followers are handed to ``fan_out`` in chunks of ``fan_out_chunk``
    (workers copy them in parallel); an account the provider fans out at read
    time (a celebrity) gets no chunks at all.
    """

    def __init__(
        self,
        provider: FeedProvider,
        tracking_recorder: TrackingRecorder,
        follow_copy_limit: int = DEFAULT_COPY_LIMIT,
        fan_out: FanOut | None = None,
        fan_out_chunk: int = DEFAULT_FAN_OUT_CHUNK,
    ) -> None:
        super().__init__(tracking_recorder)
        if not 1 <= fan_out_chunk <= MAX_ADD_TO_MANY:
            raise ValueError(f"fan_out_chunk must be between 1 and {MAX_ADD_TO_MANY}")
        self.provider = provider
        self.follow_copy_limit = follow_copy_limit
        self.fan_out = fan_out
        self.fan_out_chunk = fan_out_chunk

    def process(self, event: DomainEventProtocol[Any], tracking: Tracking) -> None:
        self.apply(event)
        self.tracking_recorder.insert_tracking(tracking)

    def process_batch(self, batch: Sequence[tuple[DomainEventProtocol[Any], Tracking]]) -> None:
        applied, stopped = len(batch), None
        try:
            self.apply_batch([event for event, _ in batch])
        except BatchStopped as error:
            applied, stopped = error.index, error
        if applied:
            try:
                self.tracking_recorder.insert_tracking(batch[applied - 1][1])
            except Exception as error:
                raise BatchStopped(applied - 1, error, recording=True) from error
        if stopped is not None:
            raise stopped

    def apply_batch(self, events: Sequence[DomainEventProtocol[Any]]) -> None:
        """The feed writes of ``events``, as :meth:`apply` makes them one by
        one: each run of consecutive registrations (their timelines following
        their own feeds) and each run of consecutive follows is one
        ``follow_many`` (a follow's notification after it), every other event
        is applied alone, in order. Raises :class:`BatchStopped` at the first
        event that fails, the events before it applied."""
        for start, end in follow_runs(events):
            if end - start > 1:
                try:
                    self._apply_follow_run(events[start:end])
                    continue
                except Exception:  # found again below, event by event
                    pass
            # Alone, or a run that failed: one by one finds the event that
            # fails (the writes are idempotent: those before it are harmless).
            for index in range(start, end):
                try:
                    self.apply(events[index])
                except Exception as error:
                    raise BatchStopped(index, error) from error

    def _apply_follow_run(self, run: Sequence[DomainEventProtocol[Any]]) -> None:
        """A run of registrations, or of follows, in one ``follow_many``: a
        follow copies only the followed user feed's own posts, which no
        follow changes, so the edges may be written together."""
        if isinstance(run[0], User.Registered):
            self.provider.follow_many(
                [
                    Follow(timeline_feed(event.username), user_feed(event.username))
                    for event in run
                    if isinstance(event, User.Registered)
                ],
                activity_copy_limit=0,
            )
            return
        follows = [event for event in run if isinstance(event, User.Followed)]
        self.provider.follow_many(
            [Follow(timeline_feed(e.follower), user_feed(e.followee)) for e in follows],
            activity_copy_limit=self.follow_copy_limit,
        )
        for event in follows:
            self.provider.add_activity(notifications_feed(event.followee), follow_activity(event))

    def apply(self, event: DomainEventProtocol[Any]) -> None:
        """The feed writes for one event; idempotent."""
        if isinstance(event, User.Registered):
            # The home timeline shows the user's own posts, as Twitter's does.
            self.provider.follow(
                timeline_feed(event.username), user_feed(event.username), activity_copy_limit=0
            )
        elif isinstance(event, User.Followed):
            self.provider.follow(
                timeline_feed(event.follower),
                user_feed(event.followee),
                activity_copy_limit=self.follow_copy_limit,
            )
            self.provider.add_activity(notifications_feed(event.followee), follow_activity(event))
        elif isinstance(event, User.Unfollowed):
            self.provider.unfollow(
                timeline_feed(event.follower), user_feed(event.followee), keep_history=False
            )
            # An undone follow is no longer news.
            self.provider.remove_activity(
                notifications_feed(event.followee),
                follow_foreign_id(event.follower, event.followee),
            )
        elif isinstance(event, Tweet.Posted):
            self.post(user_feed(event.author), post_activity(event))
        elif isinstance(event, Tweet.Deleted):
            self.provider.remove_activity(
                user_feed(event.author), post_foreign_id(event.originator_id)
            )

    def post(self, feed: FeedId, activity: Activity) -> None:
        """Add ``activity`` to ``feed``, fanning out in chunks when it pays."""
        provider, chunk = self.provider, self.fan_out_chunk
        if (
            self.fan_out is None
            or not provider.supports_chunked_fan_out
            or provider.fans_out_on_read(feed)
            or not provider.followers(feed, limit=1, offset=chunk)  # at most `chunk` of them
        ):
            provider.add_activity(feed, activity)
            return
        activity_id = provider.store_activity(feed, activity)
        if provider.fans_out_on_read(feed):  # this post took it past the threshold
            return
        # Only this projector changes follows, one event at a time, so the
        # pages are a consistent snapshot of the followers at this event.
        offset = 0
        while True:
            followers = provider.followers(feed, limit=chunk, offset=offset)
            if followers:
                self.fan_out.dispatch(feed, activity_id, followers)
            if len(followers) < chunk:
                return
            offset += chunk


def follow_runs(events: Sequence[DomainEventProtocol[Any]]) -> list[tuple[int, int]]:
    """``events`` cut into runs ``[start, end)``: consecutive registrations,
    consecutive follows, and every other event alone."""
    runs: list[tuple[int, int]] = []
    start = 0
    for index in range(1, len(events) + 1):
        if index == len(events) or not _same_run(events[start], events[index]):
            runs.append((start, index))
            start = index
    return runs


def _same_run(first: DomainEventProtocol[Any], event: DomainEventProtocol[Any]) -> bool:
    kind = type(first)
    return kind in (User.Registered, User.Followed) and type(event) is kind


class CatalogProjector(Projector):
    """Keeps the catalog of users and live posts up to date with the log."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog)
        self.catalog = catalog

    def process(self, event: DomainEventProtocol[Any], tracking: Tracking) -> None:
        catalog = self.catalog
        if isinstance(event, User.Registered):
            catalog.add_user(
                UserView(event.username, event.display_name, "", event.timestamp), tracking
            )
        elif isinstance(event, User.ProfileUpdated):
            catalog.update_profile(event.username, event.display_name, event.bio, tracking)
        elif isinstance(event, User.Followed):
            catalog.record_follow(event.follower, event.followee, +1, tracking)
        elif isinstance(event, User.Unfollowed):
            catalog.record_follow(event.follower, event.followee, -1, tracking)
        elif isinstance(event, Tweet.Posted):
            entities = tuple(TextEntity.from_dict(data) for data in event.entities)
            post = PostView(
                event.originator_id, event.author, event.text, event.posted_at, entities
            )
            catalog.add_post(post, tracking)
        elif isinstance(event, Tweet.Deleted):
            catalog.remove_post(event.originator_id, tracking)
        else:
            catalog.insert_tracking(tracking)

"""The contract every ``FeedProvider`` adapter must meet, as one abstract suite.

Each adapter's test module subclasses :class:`FeedProviderContract` and
implements ``make_provider``; pytest collects the subclass (named ``Test…``)
with every test below. The suite talks to the port only, so it runs unchanged
against the in-memory, Redis and GetStream adapters. Each test calls
``make_provider`` for itself and uses feed ids and foreign ids unique to the
test, so a provider backed by a shared server need not be emptied between tests.

The rules come from ``application/feeds.py`` and
``shared/reference/getstream-feeds.md``. Where GetStream leaves a corner open,
the suite (and the property test's model) pins it down as follows: an
activity's copy made from feed F, by a follow of F or as a ``to`` target of an
activity added to F, lasts as long as F itself holds the activity directly or
as a ``to`` target; unfollowing F removes only what arrived by following F.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.feeds import (
    DEFAULT_COPY_LIMIT,
    DEFAULT_READ_LIMIT,
    MAX_ADD_TO_MANY,
    MAX_COPY_LIMIT,
    MAX_READ_LIMIT,
    Activity,
    FeedId,
    FeedInputError,
    FeedProvider,
    Follow,
    StoredActivity,
    activity_sort_key,
)

BASE_TIME = datetime(2024, 3, 1, 12, 0, 0)
# More ``to`` targets than GetStream takes in one request (100), and than two.
TARGETS_PAST_A_REQUEST = 237


def at(seconds: float) -> datetime:
    return BASE_TIME + timedelta(seconds=seconds)


class FeedProviderContract:
    """Tests of the ``FeedProvider`` port; subclass and implement ``make_provider``."""

    #: Examples for the model-based property test; a slow adapter may lower it.
    property_max_examples = 50

    def make_provider(self) -> FeedProvider:
        raise NotImplementedError("a contract subclass must return a fresh provider")

    # -- helpers --------------------------------------------------------------

    def feed(self, group: str = "user") -> FeedId:
        return FeedId(group, f"c{uuid.uuid4().hex[:16]}")

    def foreign_id(self) -> str:
        return f"post:{uuid.uuid4().hex}"

    def activity(
        self,
        seconds: float = 0,
        *,
        foreign_id: str | None = None,
        to: tuple[FeedId, ...] = (),
        extra: dict[str, str] | None = None,
        actor: str = "alice",
    ) -> Activity:
        fid = foreign_id or self.foreign_id()
        return Activity(
            actor=actor,
            verb="tweet",
            object=fid,
            foreign_id=fid,
            time=at(seconds),
            to=to,
            extra=extra or {},
        )

    def read_all(self, provider: FeedProvider, feed: FeedId, page: int = 7) -> list[StoredActivity]:
        """Every activity of ``feed``, newest first, walked page by page."""
        found: list[StoredActivity] = []
        cursor: str | None = None
        while True:
            batch = provider.read(feed, limit=page, id_lt=cursor)
            found += batch
            if len(batch) < page:
                return found
            cursor = batch[-1].id

    def ids(self, provider: FeedProvider, feed: FeedId) -> list[str]:
        return [item.id for item in self.read_all(provider, feed)]

    def foreign_ids(self, provider: FeedProvider, feed: FeedId) -> list[str]:
        return [item.foreign_id for item in self.read_all(provider, feed)]

    def only(self, provider: FeedProvider, feed: FeedId) -> StoredActivity:
        items = self.read_all(provider, feed)
        assert len(items) == 1, items
        return items[0]

    # -- add_activity ---------------------------------------------------------

    def test_add_returns_an_id_and_the_activity_reads_back(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        fid = self.foreign_id()
        moment = datetime(2024, 5, 6, 7, 8, 9, 123456)
        activity = Activity(
            actor="alice",
            verb="tweet",
            object="tweet:1",
            foreign_id=fid,
            time=moment,
            extra={"text": "hello", "lang": "en"},
        )
        aid = provider.add_activity(feed, activity)
        assert isinstance(aid, str) and aid
        activity_sort_key(aid)  # every id the provider issues is a valid cursor
        assert provider.read(feed) == [
            StoredActivity(
                id=aid,
                actor="alice",
                verb="tweet",
                object="tweet:1",
                foreign_id=fid,
                time=moment,
                extra={"text": "hello", "lang": "en"},
            )
        ]

    def test_scalars_read_back_as_strings(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        fid = self.foreign_id()
        extra: dict[str, object] = {"count": 3, "ratio": 1.5, "flag": True}
        activity = Activity(
            actor="alice",
            verb="tweet",
            object=3,  # type: ignore[arg-type]
            foreign_id=fid,
            time=at(0),
            extra=extra,  # type: ignore[arg-type]
        )
        provider.add_activity(feed, activity)
        item = self.only(provider, feed)
        assert item.object == "3"
        assert dict(item.extra) == {"count": "3", "ratio": "1.5", "flag": "True"}

    def test_add_copies_to_followers_with_the_same_id_and_data(self) -> None:
        provider = self.make_provider()
        author, reader_1, reader_2 = self.feed(), self.feed("timeline"), self.feed("timeline")
        provider.follow(reader_1, author)
        provider.follow(reader_2, author)
        aid = provider.add_activity(author, self.activity(extra={"text": "hi"}))
        assert self.only(provider, author).id == aid
        for reader in (reader_1, reader_2):
            copy = self.only(provider, reader)
            assert copy.id == aid
            assert dict(copy.extra) == {"text": "hi"}

    def test_fan_out_is_one_hop(self) -> None:
        provider = self.make_provider()
        author, middle, far = self.feed(), self.feed("timeline"), self.feed("timeline")
        provider.follow(middle, author)
        provider.follow(far, middle)
        provider.add_activity(author, self.activity())
        assert len(self.read_all(provider, middle)) == 1
        assert self.read_all(provider, far) == []

    def test_a_feed_not_following_gets_nothing(self) -> None:
        provider = self.make_provider()
        author, reader, stranger = self.feed(), self.feed("timeline"), self.feed("timeline")
        provider.follow(reader, self.feed())
        provider.follow(stranger, reader)
        provider.add_activity(author, self.activity())
        assert self.read_all(provider, reader) == []
        assert self.read_all(provider, stranger) == []

    def test_to_targets_and_their_followers_receive_the_activity(self) -> None:
        provider = self.make_provider()
        author, tag, mentioned = self.feed(), self.feed("hashtag"), self.feed("mentions")
        tag_reader, tag_far = self.feed("timeline"), self.feed("timeline")
        provider.follow(tag_reader, tag)
        provider.follow(tag_far, tag_reader)
        aid = provider.add_activity(author, self.activity(to=(tag, mentioned)))
        for target in (tag, mentioned):
            assert self.only(provider, target).id == aid
        assert self.only(provider, tag_reader).id == aid
        assert self.read_all(provider, tag_far) == []

    def test_to_listing_the_feed_itself_changes_nothing(self) -> None:
        provider = self.make_provider()
        author = self.feed()
        aid = provider.add_activity(author, self.activity(to=(author,)))
        assert self.only(provider, author).id == aid
        provider.remove_activity(author, self.only(provider, author).foreign_id)
        assert self.read_all(provider, author) == []

    def test_same_foreign_id_and_time_replaces_and_never_duplicates(self) -> None:
        provider = self.make_provider()
        author, reader, tag = self.feed(), self.feed("timeline"), self.feed("hashtag")
        provider.follow(reader, author)
        fid = self.foreign_id()
        first = provider.add_activity(
            author, self.activity(5, foreign_id=fid, to=(tag,), extra={"v": "1"})
        )
        second = provider.add_activity(
            author, self.activity(5, foreign_id=fid, to=(tag,), extra={"v": "2"})
        )
        assert first == second
        for feed in (author, reader, tag):
            item = self.only(provider, feed)
            assert item.id == first
            assert dict(item.extra) == {"v": "2"}

    def test_replaying_a_write_leaves_the_feeds_unchanged(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        activity = self.activity(1, extra={"text": "once"})
        provider.add_activity(author, activity)
        before = {feed: self.read_all(provider, feed) for feed in (author, reader)}
        provider.add_activity(author, activity)
        assert {feed: self.read_all(provider, feed) for feed in (author, reader)} == before

    def test_same_foreign_id_with_another_time_is_another_activity(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        fid = self.foreign_id()
        older = provider.add_activity(feed, self.activity(1, foreign_id=fid))
        newer = provider.add_activity(feed, self.activity(2, foreign_id=fid))
        assert older != newer
        assert self.ids(provider, feed) == [newer, older]

    def test_an_activity_reaching_a_feed_by_two_paths_shows_once(self) -> None:
        provider = self.make_provider()
        author, tag, reader = self.feed(), self.feed("hashtag"), self.feed("timeline")
        provider.follow(reader, author)
        provider.follow(reader, tag)
        aid = provider.add_activity(author, self.activity(to=(tag, reader)))
        assert self.ids(provider, reader) == [aid]

    def test_the_same_activity_written_to_two_feeds_has_one_id(self) -> None:
        provider = self.make_provider()
        first, second, reader = self.feed(), self.feed(), self.feed("timeline")
        provider.follow(reader, first)
        provider.follow(reader, second)
        activity = self.activity()
        aid = provider.add_activity(first, activity)
        assert provider.add_activity(second, activity) == aid
        assert self.ids(provider, reader) == [aid]
        assert self.ids(provider, second) == [aid]

    # -- remove_activity ------------------------------------------------------

    def test_remove_on_the_origin_removes_every_copy(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        tag, tag_reader = self.feed("hashtag"), self.feed("timeline")
        provider.follow(reader, author)
        provider.follow(tag_reader, tag)
        activity = self.activity(1, to=(tag,))
        kept = self.activity(0, to=(tag,))
        provider.add_activity(author, activity)
        kept_id = provider.add_activity(author, kept)
        provider.remove_activity(author, activity.foreign_id)
        for feed in (author, reader, tag, tag_reader):
            assert self.ids(provider, feed) == [kept_id], feed

    def test_remove_reaches_copies_made_by_follow(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        activity = self.activity()
        provider.add_activity(author, activity)
        provider.follow(reader, author)
        assert len(self.read_all(provider, reader)) == 1
        provider.remove_activity(author, activity.foreign_id)
        assert self.read_all(provider, reader) == []

    def test_remove_by_foreign_id_removes_every_time_of_it(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        fid = self.foreign_id()
        provider.add_activity(feed, self.activity(1, foreign_id=fid))
        provider.add_activity(feed, self.activity(2, foreign_id=fid))
        provider.remove_activity(feed, fid)
        assert self.read_all(provider, feed) == []

    def test_removing_an_unknown_foreign_id_succeeds_silently(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        aid = provider.add_activity(feed, self.activity())
        provider.remove_activity(feed, self.foreign_id())
        provider.remove_activity(self.feed(), self.foreign_id())
        assert self.ids(provider, feed) == [aid]

    def test_removing_twice_is_fine(self) -> None:
        provider = self.make_provider()
        feed, reader = self.feed(), self.feed("timeline")
        provider.follow(reader, feed)
        activity = self.activity()
        provider.add_activity(feed, activity)
        provider.remove_activity(feed, activity.foreign_id)
        provider.remove_activity(feed, activity.foreign_id)
        assert self.read_all(provider, feed) == []
        assert self.read_all(provider, reader) == []

    def test_remove_on_a_feed_not_holding_the_activity_changes_nothing(self) -> None:
        provider = self.make_provider()
        author, other = self.feed(), self.feed()
        activity = self.activity()
        aid = provider.add_activity(author, activity)
        provider.remove_activity(other, activity.foreign_id)
        assert self.ids(provider, author) == [aid]

    def test_remove_on_a_copy_removes_only_that_copy(self) -> None:
        provider = self.make_provider()
        author, reader, other_reader = self.feed(), self.feed("timeline"), self.feed("timeline")
        provider.follow(reader, author)
        provider.follow(other_reader, author)
        activity = self.activity()
        aid = provider.add_activity(author, activity)
        provider.remove_activity(reader, activity.foreign_id)
        assert self.read_all(provider, reader) == []
        assert self.ids(provider, author) == [aid]
        assert self.ids(provider, other_reader) == [aid]

    def test_remove_on_the_origin_keeps_separate_direct_writes(self) -> None:
        provider = self.make_provider()
        author, elsewhere = self.feed(), self.feed("notification")
        activity = self.activity()
        aid = provider.add_activity(author, activity)
        provider.add_to_many(activity, [elsewhere])
        provider.remove_activity(author, activity.foreign_id)
        assert self.ids(provider, elsewhere) == [aid]
        provider.remove_activity(elsewhere, activity.foreign_id)
        assert self.read_all(provider, elsewhere) == []

    def test_an_activity_can_be_added_again_after_removal(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        activity = self.activity()
        aid = provider.add_activity(author, activity)
        provider.remove_activity(author, activity.foreign_id)
        assert provider.add_activity(author, activity) == aid
        assert self.ids(provider, author) == [aid]
        assert self.ids(provider, reader) == [aid]

    # -- add_to_many ----------------------------------------------------------

    def test_add_to_many_writes_the_listed_feeds_only(self) -> None:
        provider = self.make_provider()
        first, second, reader, target = (
            self.feed(),
            self.feed(),
            self.feed("timeline"),
            self.feed("hashtag"),
        )
        provider.follow(reader, first)
        aid = provider.add_to_many(self.activity(to=(target,)), [first, second])
        for feed in (first, second):
            item = self.only(provider, feed)
            assert item.id == aid
        assert self.read_all(provider, reader) == []
        assert self.read_all(provider, target) == []

    def test_add_to_many_is_idempotent(self) -> None:
        provider = self.make_provider()
        feeds = [self.feed(), self.feed()]
        activity = self.activity(extra={"v": "1"})
        aid = provider.add_to_many(activity, feeds)
        again = self.activity(foreign_id=activity.foreign_id, extra={"v": "2"})
        assert provider.add_to_many(again, [*feeds, feeds[0]]) == aid
        for feed in feeds:
            item = self.only(provider, feed)
            assert dict(item.extra) == {"v": "2"}

    def test_add_to_many_refuses_more_than_5000_feeds(self) -> None:
        provider = self.make_provider()
        feeds = [self.feed() for _ in range(MAX_ADD_TO_MANY + 1)]
        with pytest.raises(FeedInputError):
            provider.add_to_many(self.activity(), feeds)
        assert self.read_all(provider, feeds[0]) == []

    # -- follow ---------------------------------------------------------------

    def test_follow_copies_the_newest_activities_of_the_target(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        ids = [provider.add_activity(author, self.activity(n)) for n in range(5)]
        provider.follow(reader, author, activity_copy_limit=3)
        copies = self.read_all(provider, reader)
        assert [item.id for item in copies] == ids[::-1][:3]

    def test_follow_copies_100_by_default(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        ids = [
            provider.add_activity(author, self.activity(n)) for n in range(DEFAULT_COPY_LIMIT + 1)
        ]
        provider.follow(reader, author)
        assert self.ids(provider, reader) == ids[::-1][:DEFAULT_COPY_LIMIT]

    def test_follow_with_copy_limit_0_copies_nothing_but_later_activities_arrive(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.add_activity(author, self.activity(0))
        provider.follow(reader, author, activity_copy_limit=0)
        assert self.read_all(provider, reader) == []
        aid = provider.add_activity(author, self.activity(1))
        assert self.ids(provider, reader) == [aid]

    def test_follow_copies_to_target_activities_but_not_what_the_target_follows(self) -> None:
        provider = self.make_provider()
        author, tag, tag_reader, reader = (
            self.feed(),
            self.feed("hashtag"),
            self.feed("timeline"),
            self.feed("timeline"),
        )
        far = self.feed()
        provider.follow(tag, far)
        provider.add_activity(far, self.activity(0))
        tagged = provider.add_activity(author, self.activity(1, to=(tag,)))
        provider.follow(tag_reader, tag)
        assert self.ids(provider, tag_reader) == [tagged]
        provider.follow(reader, tag_reader)
        assert self.read_all(provider, reader) == []

    def test_copy_limit_above_1000_or_negative_is_an_input_error(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        with pytest.raises(FeedInputError):
            provider.follow(reader, author, activity_copy_limit=MAX_COPY_LIMIT + 1)
        with pytest.raises(FeedInputError):
            provider.follow(reader, author, activity_copy_limit=-1)
        assert provider.following(reader) == []
        provider.follow(reader, author, activity_copy_limit=MAX_COPY_LIMIT)
        assert provider.following(reader) == [author]

    def test_following_twice_is_a_no_op(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.add_activity(author, self.activity(0))
        provider.follow(reader, author, activity_copy_limit=0)
        provider.follow(reader, author)
        assert self.read_all(provider, reader) == []
        aid = provider.add_activity(author, self.activity(1))
        assert self.ids(provider, reader) == [aid]
        assert provider.followers(author) == [reader]
        assert provider.following(reader) == [author]

    def test_following_twice_with_copies_does_not_duplicate(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        ids = [provider.add_activity(author, self.activity(n)) for n in range(3)]
        provider.follow(reader, author)
        provider.follow(reader, author)
        assert self.ids(provider, reader) == ids[::-1]

    def test_a_feed_cannot_follow_itself(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        with pytest.raises(FeedInputError):
            provider.follow(feed, feed)
        with pytest.raises(FeedInputError):
            provider.follow_many([Follow(feed, feed)])
        assert provider.followers(feed) == []

    # -- unfollow -------------------------------------------------------------

    def test_unfollow_removes_the_target_activities(self) -> None:
        provider = self.make_provider()
        author, other, reader = self.feed(), self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        provider.follow(reader, other)
        provider.add_activity(author, self.activity(0))
        kept = provider.add_activity(other, self.activity(1))
        own = provider.add_activity(reader, self.activity(2))
        provider.unfollow(reader, author)
        assert self.ids(provider, reader) == [own, kept]

    def test_unfollow_removes_copies_made_by_the_follow(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.add_activity(author, self.activity(0))
        provider.follow(reader, author)
        provider.unfollow(reader, author)
        assert self.read_all(provider, reader) == []

    def test_unfollow_keeps_an_activity_that_also_arrived_as_a_to_target(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        mention = provider.add_activity(author, self.activity(0, to=(reader,)))
        provider.add_activity(author, self.activity(1))
        provider.unfollow(reader, author)
        item = self.only(provider, reader)
        assert item.id == mention

    def test_unfollow_keeps_an_activity_that_also_arrived_from_another_followed_feed(
        self,
    ) -> None:
        provider = self.make_provider()
        author, tag, reader = self.feed(), self.feed("hashtag"), self.feed("timeline")
        provider.follow(reader, author)
        provider.follow(reader, tag)
        tagged = provider.add_activity(author, self.activity(0, to=(tag,)))
        provider.add_activity(author, self.activity(1))
        provider.unfollow(reader, author)
        item = self.only(provider, reader)
        assert item.id == tagged
        provider.unfollow(reader, tag)
        assert self.read_all(provider, reader) == []

    def test_unfollow_keeps_an_activity_also_written_directly(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        activity = self.activity()
        aid = provider.add_activity(author, activity)
        provider.add_to_many(activity, [reader])
        provider.unfollow(reader, author)
        item = self.only(provider, reader)
        assert item.id == aid

    def test_unfollow_keeping_history_keeps_the_activities(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        aid = provider.add_activity(author, self.activity(0))
        provider.unfollow(reader, author, keep_history=True)
        assert self.ids(provider, reader) == [aid]
        provider.add_activity(author, self.activity(1))
        assert self.ids(provider, reader) == [aid]
        assert provider.followers(author) == []

    def test_after_unfollow_new_activities_no_longer_arrive(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        provider.unfollow(reader, author)
        provider.add_activity(author, self.activity())
        assert self.read_all(provider, reader) == []

    def test_unfollowing_a_feed_not_followed_is_a_no_op(self) -> None:
        provider = self.make_provider()
        author, stranger, reader = self.feed(), self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        aid = provider.add_activity(author, self.activity())
        provider.unfollow(reader, stranger)
        provider.unfollow(stranger, reader)
        provider.unfollow(self.feed(), self.feed())
        assert self.ids(provider, reader) == [aid]
        assert provider.following(reader) == [author]

    def test_unfollowing_twice_is_fine(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        provider.add_activity(author, self.activity())
        provider.unfollow(reader, author)
        provider.unfollow(reader, author)
        assert self.read_all(provider, reader) == []
        assert provider.following(reader) == []

    def test_follow_again_after_unfollow_copies_again(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        aid = provider.add_activity(author, self.activity())
        provider.follow(reader, author)
        provider.unfollow(reader, author)
        provider.follow(reader, author)
        assert self.ids(provider, reader) == [aid]

    # -- follow_many / unfollow_many ------------------------------------------

    def test_follow_many_behaves_like_follow(self) -> None:
        provider = self.make_provider()
        first, second, reader = self.feed(), self.feed(), self.feed("timeline")
        first_ids = [provider.add_activity(first, self.activity(n)) for n in (0, 2)]
        second_ids = [provider.add_activity(second, self.activity(n)) for n in (1, 3)]
        follows = [Follow(reader, first), Follow(reader, second)]
        provider.follow_many(follows, activity_copy_limit=1)
        provider.follow_many(follows)
        assert self.ids(provider, reader) == [second_ids[1], first_ids[1]]
        assert provider.following(reader) == [second, first]
        assert provider.followers(first) == [reader]

    def test_follow_many_copies_100_by_default(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        for n in range(DEFAULT_COPY_LIMIT + 1):
            provider.add_activity(author, self.activity(n))
        provider.follow_many([Follow(reader, author)])
        assert len(self.ids(provider, reader)) == DEFAULT_COPY_LIMIT

    def test_follow_many_checks_the_copy_limit(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        with pytest.raises(FeedInputError):
            provider.follow_many([Follow(reader, author)], activity_copy_limit=MAX_COPY_LIMIT + 1)
        assert provider.following(reader) == []

    def test_unfollow_many_behaves_like_unfollow(self) -> None:
        provider = self.make_provider()
        first, second, third, reader = self.feed(), self.feed(), self.feed(), self.feed("timeline")
        provider.follow_many([Follow(reader, feed) for feed in (first, second, third)])
        provider.add_activity(first, self.activity(0))
        kept = provider.add_activity(second, self.activity(1))
        stays = provider.add_activity(third, self.activity(2))
        provider.unfollow_many([Follow(reader, first), Follow(reader, self.feed())])
        provider.unfollow_many([Follow(reader, second)], keep_history=True)
        assert self.ids(provider, reader) == [stays, kept]
        assert provider.following(reader) == [third]

    # -- read -----------------------------------------------------------------

    def test_read_is_newest_first_by_time(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        middle = provider.add_activity(feed, self.activity(10))
        newest = provider.add_activity(feed, self.activity(20))
        back_dated = provider.add_activity(feed, self.activity(5))
        between = provider.add_activity(feed, self.activity(15))
        assert self.ids(provider, feed) == [newest, between, middle, back_dated]

    def test_activities_with_equal_time_are_ordered_by_id(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        ids = [provider.add_activity(feed, self.activity(7)) for _ in range(6)]
        provider.add_activity(feed, self.activity(8))
        provider.add_activity(feed, self.activity(6))
        read = self.ids(provider, feed)
        assert read[1:7] == sorted(ids, key=activity_sort_key, reverse=True)

    def test_read_returns_25_by_default(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        ids = [provider.add_activity(feed, self.activity(n)) for n in range(DEFAULT_READ_LIMIT + 5)]
        assert [item.id for item in provider.read(feed)] == ids[::-1][:DEFAULT_READ_LIMIT]

    def test_read_limit_must_be_between_1_and_100(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        provider.add_activity(feed, self.activity())
        for limit in (0, -1, MAX_READ_LIMIT + 1):
            with pytest.raises(FeedInputError):
                provider.read(feed, limit=limit)
        assert len(provider.read(feed, limit=MAX_READ_LIMIT)) == 1
        assert len(provider.read(feed, limit=1)) == 1

    def test_paging_with_id_lt_walks_the_whole_feed(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        # Some times repeat, so pages also split runs of equal time.
        ids = [provider.add_activity(feed, self.activity(n // 3)) for n in range(31)]
        expected = sorted(ids, key=activity_sort_key, reverse=True)
        for page in (1, 4, 10, 31, 100):
            assert [item.id for item in self.read_all(provider, feed, page=page)] == expected

    def test_id_lt_returns_only_older_activities(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        ids = [provider.add_activity(feed, self.activity(n)) for n in range(5)]
        assert [item.id for item in provider.read(feed, limit=2, id_lt=ids[3])] == [ids[2], ids[1]]
        assert provider.read(feed, id_lt=ids[0]) == []

    def test_id_lt_of_a_removed_activity_still_works(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        activities = [self.activity(n) for n in range(5)]
        ids = [provider.add_activity(feed, activity) for activity in activities]
        provider.remove_activity(feed, activities[2].foreign_id)
        assert [item.id for item in provider.read(feed, id_lt=ids[2])] == [ids[1], ids[0]]

    def test_id_lt_that_is_no_activity_id_is_an_input_error(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        provider.add_activity(feed, self.activity())
        for cursor in ("nope", "", str(uuid.uuid4()), "12345"):
            with pytest.raises(FeedInputError):
                provider.read(feed, id_lt=cursor)

    def test_unknown_or_empty_feed_reads_as_empty(self) -> None:
        provider = self.make_provider()
        feed = self.feed()
        assert provider.read(self.feed()) == []
        activity = self.activity()
        aid = provider.add_activity(feed, activity)
        assert provider.read(self.feed(), id_lt=aid) == []
        provider.remove_activity(feed, activity.foreign_id)
        assert provider.read(feed) == []

    def test_unicode_feed_ids_work(self) -> None:
        provider = self.make_provider()
        feed = FeedId("hashtag", f"café_日本-{uuid.uuid4().hex[:8]}")
        aid = provider.add_activity(feed, self.activity())
        assert self.ids(provider, feed) == [aid]

    # -- followers / following ------------------------------------------------

    def test_followers_and_following_list_the_most_recent_follow_first(self) -> None:
        provider = self.make_provider()
        star = self.feed()
        fans = [self.feed("timeline") for _ in range(5)]
        for fan in fans:
            provider.follow(fan, star)
        assert provider.followers(star) == fans[::-1]
        idols = [self.feed() for _ in range(5)]
        reader = self.feed("timeline")
        provider.follow_many([Follow(reader, idol) for idol in idols])
        assert provider.following(reader) == idols[::-1]

    def test_followers_and_following_page_by_offset_and_limit(self) -> None:
        provider = self.make_provider()
        star = self.feed()
        fans = [self.feed("timeline") for _ in range(7)]
        for fan in fans:
            provider.follow(fan, star)
        newest_first = fans[::-1]
        assert provider.followers(star, limit=3) == newest_first[:3]
        assert provider.followers(star, limit=3, offset=3) == newest_first[3:6]
        assert provider.followers(star, limit=3, offset=6) == newest_first[6:]
        assert provider.followers(star, offset=7) == []
        assert provider.following(fans[0], limit=1) == [star]
        assert provider.following(fans[0], offset=1) == []

    def test_followers_and_following_past_the_end_are_empty_however_far(self) -> None:
        provider = self.make_provider()
        star, fan = self.feed(), self.feed("timeline")
        provider.follow(fan, star)
        for offset in (1, 2**31, 2**32, 2**63 - 1, 2**63, 10**23):
            assert provider.followers(star, offset=offset) == []
            assert provider.following(fan, offset=offset) == []
        assert provider.followers(star, limit=2**63) == [fan]
        assert provider.following(fan, limit=2**64) == [star]

    def test_unfollow_updates_followers_and_following(self) -> None:
        provider = self.make_provider()
        star, first, second = self.feed(), self.feed("timeline"), self.feed("timeline")
        provider.follow(first, star)
        provider.follow(second, star)
        provider.unfollow(first, star)
        assert provider.followers(star) == [second]
        assert provider.following(first) == []
        provider.follow(first, star)
        assert provider.followers(star) == [first, second]

    def test_following_again_does_not_move_a_follow(self) -> None:
        provider = self.make_provider()
        star, first, second = self.feed(), self.feed("timeline"), self.feed("timeline")
        provider.follow(first, star)
        provider.follow(second, star)
        provider.follow(first, star)
        assert provider.followers(star) == [second, first]

    def test_followers_of_an_unknown_feed_are_none(self) -> None:
        provider = self.make_provider()
        assert provider.followers(self.feed()) == []
        assert provider.following(self.feed()) == []

    # -- validation -----------------------------------------------------------

    @pytest.mark.parametrize(
        ("group", "feed_id"),
        [
            ("user", "a b"),
            ("user", "a:b"),
            ("us.er", "a"),
            ("user", ""),
            ("", "a"),
            ("user", "a/b"),
        ],
    )
    def test_feed_ids_with_bad_characters_are_input_errors(self, group: str, feed_id: str) -> None:
        with pytest.raises(FeedInputError):
            FeedId(group, feed_id)
        with pytest.raises(FeedInputError):
            FeedId.parse(f"{group}:{feed_id}")

    def test_feed_id_text_without_a_colon_is_an_input_error(self) -> None:
        with pytest.raises(FeedInputError):
            FeedId.parse("user")
        assert FeedId.parse("user:bob") == FeedId("user", "bob")

    @pytest.mark.parametrize("missing", ["actor", "verb", "object", "foreign_id"])
    def test_an_activity_needs_actor_verb_object_and_foreign_id(self, missing: str) -> None:
        fields: dict[str, object] = {
            "actor": "alice",
            "verb": "tweet",
            "object": "tweet:1",
            "foreign_id": "tweet:1",
        }
        fields[missing] = ""
        with pytest.raises(FeedInputError):
            Activity(time=at(0), **fields)  # type: ignore[arg-type]

    def test_activity_time_must_be_naive(self) -> None:
        with pytest.raises(FeedInputError):
            Activity(
                actor="alice",
                verb="tweet",
                object="x",
                foreign_id="x",
                time=datetime(2024, 1, 1, tzinfo=UTC),
            )

    def test_any_number_of_to_targets_get_it_and_lose_it_with_the_origin(self) -> None:
        """A post may mention more people than GetStream takes targets in one
        request (100): every target gets it, once, and loses it when the
        origin does."""
        provider = self.make_provider()
        author = self.feed()
        targets = tuple(self.feed("hashtag") for _ in range(TARGETS_PAST_A_REQUEST))
        activity = self.activity(to=targets)
        aid = provider.add_activity(author, activity)
        assert provider.add_activity(author, activity) == aid  # projected again
        for target in targets:
            assert self.ids(provider, target) == [aid]
        provider.remove_activity(author, activity.foreign_id)
        for target in (author, *targets):
            assert self.ids(provider, target) == []

    def test_input_errors_are_value_errors(self) -> None:
        provider = self.make_provider()
        with pytest.raises(ValueError):
            provider.read(self.feed(), limit=0)

    # -- concurrency ----------------------------------------------------------

    def test_concurrent_writers_lose_nothing(self) -> None:
        provider = self.make_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        errors: list[BaseException] = []

        def write(worker: int) -> None:
            try:
                for n in range(10):
                    provider.add_activity(author, self.activity(worker * 10 + n))
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(self.ids(provider, author)) == 40
        assert self.ids(provider, reader) == self.ids(provider, author)

    # -- chunked fan-out (providers with supports_chunked_fan_out) --------------

    def chunked_provider(self) -> FeedProvider:
        provider = self.make_provider()
        if not provider.supports_chunked_fan_out:
            pytest.skip(f"{type(provider).__name__} fans out on its own")
        return provider

    def test_store_then_copy_in_chunks_reads_as_add_activity(self) -> None:
        provider = self.chunked_provider()
        eager, chunked = self.feed(), self.feed()
        tag = self.feed("hashtag")
        tag_reader = self.feed("timeline")
        provider.follow(tag_reader, tag)
        readers = {feed: [self.feed("timeline") for _ in range(5)] for feed in (eager, chunked)}
        for feed, followers in readers.items():
            for reader in followers:
                provider.follow(reader, feed)
        earlier = self.activity(0)
        provider.add_activity(eager, earlier)
        provider.add_activity(chunked, earlier)
        eager_id = provider.add_activity(eager, self.activity(1, to=(tag,)))
        stored = self.activity(1, to=(tag,))
        aid = provider.store_activity(chunked, stored)
        assert set(self.ids(provider, tag_reader)) == {aid, eager_id}
        followers = provider.followers(chunked, limit=10)
        provider.copy_to_followers(chunked, aid, followers[:2])
        provider.copy_to_followers(chunked, aid, followers[2:])
        provider.copy_to_followers(chunked, aid, followers[1:3])  # a retried chunk
        for eager_reader, chunked_reader in zip(readers[eager], readers[chunked], strict=True):
            eager_items = self.read_all(provider, eager_reader)
            chunked_items = self.read_all(provider, chunked_reader)
            assert [a.time for a in chunked_items] == [stored.time, earlier.time]
            assert [(a.time, a.verb) for a in eager_items] == [
                (a.time, a.verb) for a in chunked_items
            ]

    def test_copy_to_followers_skips_feeds_that_do_not_follow(self) -> None:
        provider = self.chunked_provider()
        author, reader, stranger, left = (
            self.feed(),
            self.feed("timeline"),
            self.feed("timeline"),
            self.feed("timeline"),
        )
        provider.follow(reader, author)
        provider.follow(left, author)
        aid = provider.store_activity(author, self.activity())
        provider.unfollow(left, author)
        provider.copy_to_followers(author, aid, [reader, stranger, left])
        assert self.ids(provider, reader) == [aid]
        assert self.ids(provider, stranger) == []
        assert self.ids(provider, left) == []

    def test_copy_to_followers_after_removal_adds_nothing(self) -> None:
        provider = self.chunked_provider()
        author, reader = self.feed(), self.feed("timeline")
        provider.follow(reader, author)
        activity = self.activity()
        aid = provider.store_activity(author, activity)
        provider.remove_activity(author, activity.foreign_id)
        provider.copy_to_followers(author, aid, [reader])
        assert self.ids(provider, reader) == []
        assert self.ids(provider, author) == []

    def test_copy_to_followers_refuses_more_than_5000_feeds(self) -> None:
        provider = self.chunked_provider()
        author = self.feed()
        aid = provider.store_activity(author, self.activity())
        too_many = [FeedId("timeline", f"r{i}") for i in range(MAX_ADD_TO_MANY + 1)]
        with pytest.raises(FeedInputError):
            provider.copy_to_followers(author, aid, too_many)

    def test_providers_without_chunked_fan_out_refuse_the_calls(self) -> None:
        provider = self.make_provider()
        if provider.supports_chunked_fan_out:
            pytest.skip("this provider fans out in chunks")
        with pytest.raises(NotImplementedError):
            provider.store_activity(self.feed(), self.activity())

    # -- model-based property -------------------------------------------------

    def test_provider_matches_a_simple_model(self) -> None:
        """Random sequences of writes, follows and unfollows leave every feed
        holding exactly what a naive model of the rules predicts."""

        @settings(
            max_examples=self.property_max_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(graph=st.lists(_FOLLOW), ops=st.lists(_OPERATIONS, min_size=10, max_size=40))
        def check(graph: list[_Follow], ops: list[_Op]) -> None:
            provider = self.make_provider()
            run = uuid.uuid4().hex[:12]
            feeds = [FeedId(group, f"m{run}{n}") for n, group in enumerate(_MODEL_GROUPS)]
            model = _FeedModel(feeds, run)
            for edge in graph:
                model.apply(edge, provider)
            for op in ops:
                model.apply(op, provider)
                self.check_model(provider, model)

        check()

    def check_model(self, provider: FeedProvider, model: _FeedModel) -> None:
        for feed in model.feeds:
            items = self.read_all(provider, feed, page=4)
            assert [item.id for item in items] == model.ids(feed), feed
            for item in items:
                assert dict(item.extra) == model.extra[item.id]
            assert provider.followers(feed) == model.followers(feed), feed
            assert provider.following(feed) == model.following(feed), feed


# -- the property test's model ------------------------------------------------

_MODEL_GROUPS = ("user", "user", "timeline", "hashtag")
_FEED = st.integers(0, len(_MODEL_GROUPS) - 1)
_FOREIGN = st.integers(0, 3)


@dataclass(frozen=True)
class _Spec:
    """An activity from a small pool, so that replays, ties and re-adds happen."""

    foreign: int
    seconds: int
    version: int


@dataclass(frozen=True)
class _Add:
    feed: int
    spec: _Spec
    to: tuple[int, ...]


@dataclass(frozen=True)
class _AddToMany:
    spec: _Spec
    feeds: tuple[int, ...]


@dataclass(frozen=True)
class _Remove:
    feed: int
    foreign: int


@dataclass(frozen=True)
class _Follow:
    source: int
    target: int
    limit: int


@dataclass(frozen=True)
class _Unfollow:
    source: int
    target: int
    keep_history: bool


_Op = _Add | _AddToMany | _Remove | _Follow | _Unfollow

_SPEC = st.builds(_Spec, _FOREIGN, st.integers(0, 2), st.integers(0, 2))
_FOLLOW = st.builds(_Follow, _FEED, _FEED, st.sampled_from([0, 1, 2, DEFAULT_COPY_LIMIT]))
_OPERATIONS: st.SearchStrategy[_Op] = st.one_of(
    st.builds(_Add, _FEED, _SPEC, st.lists(_FEED, max_size=2).map(tuple)),
    st.builds(_Remove, _FEED, _FOREIGN),
    _FOLLOW,
    st.builds(_Unfollow, _FEED, _FEED, st.booleans()),
    st.builds(_AddToMany, _SPEC, st.lists(_FEED, max_size=3).map(tuple)),
)

DIRECT, TO, FOLLOW = "direct", "to", "follow"
_Delivery = tuple[FeedId, str, str, FeedId | None]  # holder, activity id, kind, source


@dataclass
class _FeedModel:
    """The rules, naively: the set of deliveries of activities to feeds."""

    feeds: list[FeedId]
    run: str
    deliveries: set[_Delivery] = field(default_factory=set)
    edges: list[tuple[FeedId, FeedId]] = field(default_factory=list)  # oldest first
    extra: dict[str, dict[str, str]] = field(default_factory=dict)
    foreign_id: dict[str, str] = field(default_factory=dict)

    def apply(self, op: _Op, provider: FeedProvider) -> None:
        """Perform ``op`` on ``provider`` and on the model."""
        feeds = self.feeds
        if isinstance(op, _Add):
            to = tuple(dict.fromkeys(feeds[n] for n in op.to))
            activity = self.activity(op.spec, to)
            aid = provider.add_activity(feeds[op.feed], activity)
            self.store(aid, activity)
            self.add(feeds[op.feed], aid, to)
        elif isinstance(op, _AddToMany):
            targets = [feeds[n] for n in op.feeds]
            activity = self.activity(op.spec, ())
            aid = provider.add_to_many(activity, targets)
            self.store(aid, activity)
            self.deliveries |= {(feed, aid, DIRECT, None) for feed in targets}
        elif isinstance(op, _Remove):
            provider.remove_activity(feeds[op.feed], self.fid(op.foreign))
            self.remove(feeds[op.feed], self.fid(op.foreign))
        elif isinstance(op, _Follow):
            source, target = feeds[op.source], feeds[op.target]
            if source == target:
                with pytest.raises(FeedInputError):
                    provider.follow(source, target, op.limit)
            else:
                provider.follow(source, target, op.limit)
                self.follow(source, target, op.limit)
        else:
            source, target = feeds[op.source], feeds[op.target]
            provider.unfollow(source, target, keep_history=op.keep_history)
            self.unfollow(source, target, op.keep_history)

    def fid(self, foreign: int) -> str:
        return f"m{self.run}:{foreign}"

    def activity(self, spec: _Spec, to: tuple[FeedId, ...]) -> Activity:
        fid = self.fid(spec.foreign)
        return Activity(
            actor="model",
            verb="tweet",
            object=fid,
            foreign_id=fid,
            time=at(spec.seconds),
            to=to,
            extra={"version": str(spec.version)},
        )

    def store(self, aid: str, activity: Activity) -> None:
        self.extra[aid] = dict(activity.extra)
        self.foreign_id[aid] = activity.foreign_id

    def followers(self, feed: FeedId) -> list[FeedId]:
        return [source for source, target in reversed(self.edges) if target == feed]

    def following(self, feed: FeedId) -> list[FeedId]:
        return [target for source, target in reversed(self.edges) if source == feed]

    def owns(self, feed: FeedId, aid: str) -> bool:
        """Held directly or as a ``to`` target: what fans out and is copied."""
        return any(
            (holder, a) == (feed, aid) and kind != FOLLOW for holder, a, kind, _ in self.deliveries
        )

    def ids(self, feed: FeedId) -> list[str]:
        held = {aid for holder, aid, _, _ in self.deliveries if holder == feed}
        return sorted(held, key=activity_sort_key, reverse=True)

    def add(self, feed: FeedId, aid: str, to: tuple[FeedId, ...]) -> None:
        self.deliveries.add((feed, aid, DIRECT, None))
        self.deliveries |= {(f, aid, FOLLOW, feed) for f in self.followers(feed)}
        for target in to:
            if target != feed:
                self.deliveries.add((target, aid, TO, feed))
                self.deliveries |= {(f, aid, FOLLOW, target) for f in self.followers(target)}

    def remove(self, feed: FeedId, foreign_id: str) -> None:
        self.deliveries = {
            d for d in self.deliveries if (d[0], self.foreign_id[d[1]]) != (feed, foreign_id)
        }
        # A copy lasts only while its source still owns the activity.
        while stale := {
            d for d in self.deliveries if d[3] is not None and not self.owns(d[3], d[1])
        }:
            self.deliveries -= stale

    def follow(self, source: FeedId, target: FeedId, limit: int) -> None:
        if (source, target) in self.edges:
            return
        self.edges.append((source, target))
        own = [aid for aid in self.ids(target) if self.owns(target, aid)]
        self.deliveries |= {(source, aid, FOLLOW, target) for aid in own[:limit]}

    def unfollow(self, source: FeedId, target: FeedId, keep_history: bool) -> None:
        if (source, target) not in self.edges:
            return
        self.edges.remove((source, target))
        if not keep_history:
            self.deliveries = {
                d for d in self.deliveries if (d[0], d[2], d[3]) != (source, FOLLOW, target)
            }

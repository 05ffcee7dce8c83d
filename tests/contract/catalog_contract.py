"""The contract every ``Catalog`` adapter must meet, as one abstract suite.

Each adapter's test module subclasses :class:`CatalogContract` and implements
``make_catalog`` to return a fresh, empty catalog with its tables created;
pytest collects the subclass (named ``Test…``) with every test below. The suite
talks to the port only (``application/catalog.py``), with the in-memory adapter
as the reference for how results compare: usernames are keyed by
``domain.user.username_key``, datetimes come back in UTC, and ties in ranked
reads are broken by code point order of the key.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from application.catalog import AuthoredPost, Catalog, PostView, ShownPost, TrendingTag, UserView
from domain.tweet import TextEntity

APP = "chirp"
REGISTERED_AT = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
POSTED_AT = datetime(2024, 3, 2, 8, 30, 15, 654321, tzinfo=UTC)


def user(username: str, **fields: Any) -> UserView:
    view = UserView(username, f"{username} display", f"bio of {username}", REGISTERED_AT)
    return replace(view, **fields)


def post(author: str, text: str = "hello", **fields: Any) -> PostView:
    view = PostView(uuid4(), author, text, POSTED_AT, ())
    return replace(view, **fields)


NOW = datetime(2024, 3, 2, 12, 40, tzinfo=UTC)
DAY_AGO = NOW - timedelta(hours=24)  # 2024-03-01 12:40, so the window starts at 12:00


def tagged(author: str, *tags: str, posted_at: datetime = NOW, **fields: Any) -> PostView:
    """A post carrying ``tags`` as hashtag entities, as written (not normalised)."""
    entities, text = [], ""
    for tag in tags:
        start = len(text)
        text += f"#{tag} "
        entities.append(TextEntity("hashtag", tag, start, start + 1 + len(tag)))
    return post(author, text.strip() or "no tags", posted_at=posted_at, entities=tuple(entities))


def trending(catalog: Catalog, since: datetime = DAY_AGO, limit: int = 10) -> dict[str, int]:
    """Trending tags in rank order, as an insertion-ordered dict (compare with lists)."""
    return {t.tag: t.posts for t in catalog.trending_hashtags(since, limit)}


def ranked(catalog: Catalog, limit: int = 10, exclude: tuple[str, ...] = ()) -> list[str]:
    return [u.username for u in catalog.popular_users(limit, exclude)]


class CatalogContract:
    """Tests of the ``Catalog`` port; subclass and implement ``make_catalog``."""

    def make_catalog(self) -> Catalog:
        raise NotImplementedError("a contract subclass must return a fresh, empty catalog")

    # -- helpers ---------------------------------------------------------------

    def fresh_catalog(self) -> tuple[Catalog, Callable[[], Tracking]]:
        """A fresh catalog and a source of the next tracking position of ``APP``."""
        catalog = self.make_catalog()
        counter = iter(range(1, 1_000_000))
        return catalog, lambda: Tracking(APP, next(counter))

    # -- users -----------------------------------------------------------------

    def test_a_fresh_catalog_is_empty(self) -> None:
        catalog = self.make_catalog()
        assert catalog.users(["alice"]) == {}
        assert catalog.posts([uuid4()]) == {}
        assert catalog.users([]) == {}
        assert catalog.posts([]) == {}
        assert catalog.max_tracking_id(APP) is None

    def test_users_are_found_case_insensitively_by_lower_cased_name(self) -> None:
        catalog, track = self.fresh_catalog()
        alice = user("Alice")
        catalog.add_user(alice, track())
        assert catalog.users(["alice"]) == {"alice": alice}
        assert catalog.users(["ALICE", "aLiCe", "Alice"]) == {"alice": alice}
        assert catalog.users(iter(["alIce"])) == {"alice": alice}

    def test_unknown_users_are_absent(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        assert catalog.users(["bob", "alice2", "ali"]) == {}
        assert set(catalog.users(["bob", "alice"])) == {"alice"}

    def test_a_user_round_trips_every_field(self) -> None:
        catalog, track = self.fresh_catalog()
        alice = user(
            "Alice_99",
            display_name='Alice "Ünïcødé" 🐦 O\'Brien',
            bio="line one; DROP TABLE users; -- ✓",
            followers_count=3,
            following_count=5,
            posts_count=7,
        )
        catalog.add_user(alice, track())
        assert catalog.users(["alice_99"]) == {"alice_99": alice}

    def test_adding_a_known_username_replaces_the_user_counts_included(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice", followers_count=4, posts_count=2), track())
        again = user("ALICE", display_name="Alice II", bio="new", followers_count=1)
        catalog.add_user(again, track())
        assert catalog.users(["alice"]) == {"alice": again}
        assert catalog.popular_users() == [again]

    def test_update_profile_changes_display_name_and_bio_only(self) -> None:
        catalog, track = self.fresh_catalog()
        alice = user("Alice")
        catalog.add_user(alice, track())
        catalog.add_user(user("bob"), track())
        catalog.record_follow("bob", "alice", +1, track())
        catalog.update_profile("ALICE", "Alice Liddell", "Down the rabbit hole", track())
        assert catalog.users(["alice"])["alice"] == replace(
            alice, display_name="Alice Liddell", bio="Down the rabbit hole", followers_count=1
        )
        assert catalog.users(["bob"])["bob"] == user("bob", following_count=1)

    def test_updating_an_unknown_profile_changes_nothing_but_is_tracked(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        catalog.update_profile("bob", "Bob", "bio", track())
        assert catalog.users(["alice", "bob"]) == {"alice": user("alice")}
        assert catalog.max_tracking_id(APP) == 2

    def test_follow_and_unfollow_adjust_both_counts(self) -> None:
        catalog, track = self.fresh_catalog()
        for name in ("alice", "Bob", "carol"):
            catalog.add_user(user(name), track())
        catalog.record_follow("alice", "bob", +1, track())
        catalog.record_follow("CAROL", "BOB", +1, track())
        catalog.record_follow("bob", "alice", +1, track())
        found = catalog.users(["alice", "bob", "carol"])
        assert (found["alice"].followers_count, found["alice"].following_count) == (1, 1)
        assert (found["bob"].followers_count, found["bob"].following_count) == (2, 1)
        assert (found["carol"].followers_count, found["carol"].following_count) == (0, 1)

        catalog.record_follow("alice", "bob", -1, track())
        catalog.record_follow("carol", "bob", -1, track())
        found = catalog.users(["alice", "bob", "carol"])
        assert (found["alice"].followers_count, found["alice"].following_count) == (1, 0)
        assert (found["bob"].followers_count, found["bob"].following_count) == (0, 1)
        assert (found["carol"].followers_count, found["carol"].following_count) == (0, 0)

    def test_a_follow_involving_an_unknown_user_adjusts_only_the_known_one(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        catalog.record_follow("alice", "ghost", +1, track())
        catalog.record_follow("phantom", "alice", +1, track())
        assert catalog.users(["alice", "ghost", "phantom"]) == {
            "alice": user("alice", followers_count=1, following_count=1)
        }
        assert catalog.max_tracking_id(APP) == 3

    # -- posts -----------------------------------------------------------------

    def test_posts_are_added_and_removed_and_counted_on_their_author(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("Alice"), track())
        first, second = post("Alice", "first"), post("alice", "second")
        catalog.add_post(first, track())
        catalog.add_post(second, track())
        assert catalog.posts([first.id, second.id]) == {first.id: first, second.id: second}
        assert catalog.users(["alice"])["alice"].posts_count == 2

        catalog.remove_post(first.id, track())
        assert catalog.posts([first.id, second.id]) == {second.id: second}
        assert catalog.users(["alice"])["alice"].posts_count == 1

    def test_adding_a_post_twice_keeps_it_once_and_counts_it_once(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        hello = post("alice", "hello")
        catalog.add_post(hello, track())
        catalog.add_post(hello, track())
        assert catalog.posts([hello.id]) == {hello.id: hello}
        assert catalog.users(["alice"])["alice"].posts_count == 1

    def test_removing_an_unknown_or_removed_post_changes_nothing_but_is_tracked(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        hello = post("alice")
        catalog.add_post(hello, track())
        catalog.remove_post(uuid4(), track())
        assert catalog.users(["alice"])["alice"].posts_count == 1
        catalog.remove_post(hello.id, track())
        catalog.remove_post(hello.id, track())
        assert catalog.posts([hello.id]) == {}
        assert catalog.users(["alice"])["alice"].posts_count == 0
        assert catalog.max_tracking_id(APP) == 5

    def test_a_post_by_an_unknown_author_is_kept(self) -> None:
        catalog, track = self.fresh_catalog()
        orphan = post("nobody")
        catalog.add_post(orphan, track())
        assert catalog.posts([orphan.id]) == {orphan.id: orphan}
        assert catalog.users(["nobody"]) == {}

    def test_unknown_post_ids_are_absent(self) -> None:
        catalog, track = self.fresh_catalog()
        hello = post("alice")
        catalog.add_post(hello, track())
        assert catalog.posts([uuid4(), uuid4()]) == {}
        assert catalog.posts([uuid4(), hello.id, hello.id]) == {hello.id: hello}

    def test_many_users_and_posts_are_found_in_one_batch(self) -> None:
        # Over a thousand keys, a tenth of them known and shuffled among the
        # unknown, so an adapter that splits a lookup must gather every part.
        catalog, track = self.fresh_catalog()
        names = [f"User{n}" for n in range(60)]
        for name in names:
            catalog.add_user(user(name), track())
        posts = [post(names[n % len(names)], f"post {n}") for n in range(120)]
        for each in posts:
            catalog.add_post(each, track())
        rng = random.Random(42)

        post_ids = [p.id for p in posts] + [uuid4() for _ in range(1_080)]
        rng.shuffle(post_ids)
        assert catalog.posts(post_ids) == {p.id: p for p in posts}

        usernames = [name.upper() for name in names] + [f"nobody{n}" for n in range(1_140)]
        rng.shuffle(usernames)
        found_users = catalog.users(usernames)
        assert found_users == {name.lower(): user(name, posts_count=2) for name in names}

    # -- posts with their authors ------------------------------------------------

    def test_posts_with_authors_are_the_posts_and_users_lookups_joined(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("Alice", bio="likes tea"), track())
        catalog.add_user(user("bob"), track())
        catalog.record_follow("bob", "alice", +1, track())
        by_alice = post("alice", "by alice", entities=(TextEntity("mention", "bob", 0, 4),))
        by_bob = post("BOB", "by bob")
        catalog.add_post(by_alice, track())
        catalog.add_post(by_bob, track())

        found = catalog.posts_with_authors([by_alice.id, by_bob.id])

        posts = catalog.posts([by_alice.id, by_bob.id])
        users = catalog.users(["alice", "bob"])
        assert found == {
            by_alice.id: AuthoredPost(posts[by_alice.id], users["alice"]),
            by_bob.id: AuthoredPost(posts[by_bob.id], users["bob"]),
        }
        # And what those lookups return, so the two cannot be wrong together.
        alice = user("Alice", bio="likes tea", followers_count=1, posts_count=1)
        bob = user("bob", following_count=1, posts_count=1)
        assert found[by_alice.id] == AuthoredPost(by_alice, alice)
        assert found[by_bob.id] == AuthoredPost(by_bob, bob)
        author = found[by_alice.id].author
        assert author is not None
        assert author.registered_at.utcoffset() == timedelta(0)
        assert all(isinstance(post_id, UUID) for post_id in found)

    def test_a_post_whose_author_was_never_added_comes_with_no_author(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        orphan, known = post("nobody", "orphan"), post("alice", "known")
        catalog.add_post(orphan, track())
        catalog.add_post(known, track())
        assert catalog.posts_with_authors([orphan.id, known.id]) == {
            orphan.id: AuthoredPost(orphan, None),
            known.id: AuthoredPost(known, user("alice", posts_count=1)),
        }

    def test_deleted_and_unknown_posts_are_absent_with_their_authors(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        kept, gone = post("alice", "kept"), post("alice", "gone")
        catalog.add_post(kept, track())
        catalog.add_post(gone, track())
        catalog.remove_post(gone.id, track())
        found = catalog.posts_with_authors([gone.id, uuid4(), kept.id])
        assert found == {kept.id: AuthoredPost(kept, user("alice", posts_count=1))}

    def test_posts_with_authors_show_the_current_display_name(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        hello = post("alice")
        catalog.add_post(hello, track())
        catalog.update_profile("ALICE", "Queen Alice", "new bio", track())
        author = catalog.posts_with_authors([hello.id])[hello.id].author
        assert author == user("alice", display_name="Queen Alice", bio="new bio", posts_count=1)

    def test_posts_with_authors_of_no_ids_is_empty(self) -> None:
        catalog, track = self.fresh_catalog()
        assert catalog.posts_with_authors([]) == {}
        catalog.add_user(user("alice"), track())
        catalog.add_post(post("alice"), track())
        assert catalog.posts_with_authors([]) == {}
        assert catalog.posts_with_authors(iter([])) == {}
        assert catalog.posts_with_authors([uuid4()]) == {}

    def test_posts_with_authors_take_duplicate_ids_and_any_iterable(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        hello = post("alice")
        catalog.add_post(hello, track())
        expected = {hello.id: AuthoredPost(hello, user("alice", posts_count=1))}
        assert catalog.posts_with_authors([hello.id, hello.id, UUID(str(hello.id))]) == expected
        assert catalog.posts_with_authors(pid for pid in [hello.id, hello.id]) == expected

    def test_many_posts_are_found_with_their_authors_in_one_batch(self) -> None:
        # Over a thousand ids (more than two of SQLite's LOOKUP_CHUNK_SIZE
        # chunks), a tenth known and shuffled among the unknown, some by
        # authors never added: an adapter that splits the lookup must gather
        # every part.
        catalog, track = self.fresh_catalog()
        names = [f"User{n}" for n in range(40)]
        for name in names:
            catalog.add_user(user(name), track())
        authors = [*names, "ghost1", "ghost2"]
        posts = [post(authors[n % len(authors)].lower(), f"post {n}") for n in range(126)]
        for each in posts:
            catalog.add_post(each, track())
        post_ids = [p.id for p in posts] + [uuid4() for _ in range(1_134)]
        random.Random(7).shuffle(post_ids)

        found = catalog.posts_with_authors(post_ids)

        known = {name.lower(): user(name, posts_count=3) for name in names}
        assert found == {p.id: AuthoredPost(p, known.get(p.author)) for p in posts}
        assert sum(1 for each in found.values() if each.author is None) == 6

    # -- shown posts: what a page of a feed shows -------------------------------

    def test_shown_posts_are_live_posts_with_their_authors_display_names(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("Alice"), track())
        by_alice = post("alice", "by alice", entities=(TextEntity("mention", "bob", 0, 4),))
        orphan, gone = post("nobody", "orphan"), post("alice", "gone")
        for each in (by_alice, orphan, gone):
            catalog.add_post(each, track())
        catalog.remove_post(gone.id, track())

        found = catalog.shown_posts([by_alice.id, orphan.id, gone.id, uuid4(), by_alice.id])

        # An author the catalog does not know shows as the post's username.
        assert found == {
            by_alice.id: ShownPost(by_alice, "Alice display"),
            orphan.id: ShownPost(orphan, "nobody"),
        }
        assert catalog.shown_posts([]) == {}

    def test_shown_posts_follow_profile_updates_deletions_and_re_registrations(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        first, second = post("alice", "first"), post("alice", "second")
        catalog.add_post(first, track())
        catalog.add_post(second, track())
        assert catalog.shown_posts([first.id])[first.id].author_name == "alice display"
        catalog.update_profile("ALICE", "Queen Alice", "new bio", track())
        assert catalog.shown_posts([first.id, second.id]) == {
            first.id: ShownPost(first, "Queen Alice"),
            second.id: ShownPost(second, "Queen Alice"),
        }
        catalog.remove_post(first.id, track())
        assert catalog.shown_posts([first.id, second.id]) == {
            second.id: ShownPost(second, "Queen Alice")
        }
        catalog.add_user(user("Alice", display_name="Alice again"), track())
        assert catalog.shown_posts([second.id]) == {second.id: ShownPost(second, "Alice again")}
        # A write at a position already passed changes nothing, shown posts included.
        with pytest.raises(IntegrityError):
            catalog.update_profile("alice", "Stale", "", Tracking(APP, 1))
        with pytest.raises(IntegrityError):
            catalog.remove_post(second.id, Tracking(APP, 2))
        assert catalog.shown_posts([second.id]) == {second.id: ShownPost(second, "Alice again")}

    # -- round trips -----------------------------------------------------------

    def test_datetimes_come_back_timezone_aware_and_equal(self) -> None:
        catalog, track = self.fresh_catalog()
        utc_user = user("alice", registered_at=REGISTERED_AT)
        plus_two = timezone(timedelta(hours=2))
        other_zone_user = user("bob", registered_at=datetime(2024, 7, 1, 23, 59, tzinfo=plus_two))
        catalog.add_user(utc_user, track())
        catalog.add_user(other_zone_user, track())
        at_epoch = post("alice", posted_at=datetime(1970, 1, 1, tzinfo=UTC))
        catalog.add_post(at_epoch, track())

        found = catalog.users(["alice", "bob"])
        assert found["alice"].registered_at == REGISTERED_AT
        assert found["alice"].registered_at.utcoffset() == timedelta(0)
        # The same instant, whatever zone the adapter hands it back in.
        assert found["bob"].registered_at == other_zone_user.registered_at
        assert found["bob"].registered_at.utcoffset() == timedelta(0)
        back = catalog.posts([at_epoch.id])[at_epoch.id]
        assert back.posted_at == at_epoch.posted_at
        assert back.posted_at.utcoffset() == timedelta(0)

    def test_a_naive_datetime_is_taken_as_utc(self) -> None:
        catalog, track = self.fresh_catalog()
        naive_post = post("alice", posted_at=datetime(2024, 5, 6, 7, 8, 9, 10))
        naive_user = user("alice", registered_at=datetime(2024, 5, 6, 7, 8, 9, 10))
        catalog.add_post(naive_post, track())
        catalog.add_user(naive_user, track())
        back = catalog.posts([naive_post.id])[naive_post.id]
        assert back.posted_at == datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
        assert back.posted_at.utcoffset() == timedelta(0)
        registered_at = catalog.users(["alice"])["alice"].registered_at
        assert registered_at == datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
        assert registered_at.utcoffset() == timedelta(0)

    def test_text_and_entities_round_trip_as_a_tuple_of_text_entities(self) -> None:
        catalog, track = self.fresh_catalog()
        text = "héllo @Bob see https://example.com/ü?q=1&r=2 #Café 🐦 'quoted' \"double\""
        entities = (
            TextEntity("mention", "Bob", 6, 10),
            TextEntity("url", "https://example.com/ü?q=1&r=2", 15, 44),
            TextEntity("hashtag", "Café", 45, 50),
        )
        rich = post("alice", text, entities=entities)
        plain = post("alice", "no entities here")
        catalog.add_post(rich, track())
        catalog.add_post(plain, track())

        found = catalog.posts([rich.id, plain.id])
        assert found == {rich.id: rich, plain.id: plain}
        assert isinstance(found[rich.id].entities, tuple)
        assert all(isinstance(e, TextEntity) for e in found[rich.id].entities)
        assert found[plain.id].entities == ()
        assert isinstance(found[rich.id].id, UUID)

    # -- trending hashtags ------------------------------------------------------

    def test_a_fresh_catalog_has_nothing_trending_and_no_popular_users(self) -> None:
        catalog = self.make_catalog()
        assert catalog.trending_hashtags(DAY_AGO) == []
        assert catalog.popular_users() == []

    def test_trending_counts_live_posts_per_tag_over_the_window(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_user(user("alice"), track())
        hours_ago = [0, 0, 1, 5, 23]
        for n, hours in enumerate(hours_ago):
            tags = ("python", "django") if n % 2 == 0 else ("python",)
            catalog.add_post(
                tagged("alice", *tags, posted_at=NOW - timedelta(hours=hours)), track()
            )
        catalog.add_post(tagged("nobody", "rust"), track())  # unknown authors' posts count too
        catalog.add_post(post("alice", "no tags"), track())
        assert catalog.trending_hashtags(DAY_AGO) == [
            TrendingTag("python", 5),
            TrendingTag("django", 3),
            TrendingTag("rust", 1),
        ]
        # A narrower window: the last two hours (since 10:40, so from 10:00).
        assert trending(catalog, since=NOW - timedelta(hours=2)) == {
            "python": 3,
            "django": 2,
            "rust": 1,
        }

    def test_tags_are_counted_normalised_and_once_per_post(self) -> None:
        catalog, track = self.fresh_catalog()
        catalog.add_post(tagged("alice", "Python", "python", "PYTHON"), track())
        catalog.add_post(tagged("bob", "PyThOn", "Café"), track())
        catalog.add_post(tagged("carol", "CAFÉ", "café"), track())
        assert trending(catalog) == {"café": 2, "python": 2}

    def test_tags_are_counted_by_unicode_case_folding(self) -> None:
        # One key for every catalog: NFKC_Casefold, as the hashtag feeds use.
        catalog, track = self.fresh_catalog()
        catalog.add_post(tagged("alice", "Straße"), track())
        catalog.add_post(tagged("bob", "STRASSE"), track())
        catalog.add_post(tagged("carol", "STRA\u1e9eE", "Cafe\u0301"), track())
        catalog.add_post(tagged("dave", "\uff23\uff21\uff26\uff25"), track())  # fullwidth
        assert trending(catalog) == {"strasse": 3, "café": 1, "cafe": 1}

    def test_removing_a_post_decrements_its_tags_and_a_tag_at_zero_is_absent(self) -> None:
        catalog, track = self.fresh_catalog()
        first = tagged("alice", "Python", "solo", posted_at=NOW - timedelta(hours=3))
        second = tagged("bob", "python")
        catalog.add_post(first, track())
        catalog.add_post(second, track())
        assert trending(catalog) == {"python": 2, "solo": 1}

        catalog.remove_post(first.id, track())  # the stored post's hour and tags are undone
        assert trending(catalog) == {"python": 1}
        catalog.remove_post(first.id, track())  # removed already: nothing more
        assert trending(catalog) == {"python": 1}
        catalog.remove_post(second.id, track())
        assert catalog.trending_hashtags(DAY_AGO) == []

        catalog.add_post(tagged("carol", "solo", posted_at=NOW - timedelta(hours=3)), track())
        assert trending(catalog) == {"solo": 1}

    def test_a_post_added_twice_is_counted_once(self) -> None:
        catalog, track = self.fresh_catalog()
        hello = tagged("alice", "python")
        catalog.add_post(hello, track())
        catalog.add_post(hello, track())
        assert trending(catalog) == {"python": 1}
        catalog.remove_post(hello.id, track())
        assert trending(catalog) == {}

    def test_the_window_starts_at_the_hour_since_falls_in(self) -> None:
        catalog, track = self.fresh_catalog()
        since = datetime(2024, 3, 2, 10, 30, tzinfo=UTC)
        catalog.add_post(
            tagged("a", "before", posted_at=datetime(2024, 3, 2, 9, 59, 59, 999999, tzinfo=UTC)),
            track(),
        )
        catalog.add_post(
            tagged("a", "early", posted_at=datetime(2024, 3, 2, 10, 0, tzinfo=UTC)), track()
        )
        catalog.add_post(
            tagged("a", "inside", posted_at=datetime(2024, 3, 2, 10, 15, tzinfo=UTC)), track()
        )
        catalog.add_post(
            tagged("a", "later", posted_at=datetime(2024, 3, 3, 1, 0, tzinfo=UTC)), track()
        )
        catalog.add_post(
            tagged("a", "old", posted_at=datetime(2024, 2, 1, 10, 45, tzinfo=UTC)), track()
        )
        assert trending(catalog, since=since) == {"early": 1, "inside": 1, "later": 1}
        # The same instant given in another zone, or naive (taken as UTC).
        plus_two = timezone(timedelta(hours=2))
        assert trending(catalog, since=since.astimezone(plus_two)) == trending(catalog, since)
        assert trending(catalog, since=since.replace(tzinfo=None)) == trending(catalog, since)
        assert trending(catalog, since=since + timedelta(hours=1)) == {"later": 1}

    def test_posts_are_bucketed_by_their_utc_hour_whatever_their_zone(self) -> None:
        catalog, track = self.fresh_catalog()
        minus_five = timezone(timedelta(hours=-5))
        # 04:59 at -05:00 is 09:59 UTC: before a window from 10:00 UTC.
        catalog.add_post(
            tagged("a", "x", posted_at=datetime(2024, 3, 2, 4, 59, tzinfo=minus_five)), track()
        )
        catalog.add_post(
            tagged("a", "y", posted_at=datetime(2024, 3, 2, 5, 1, tzinfo=minus_five)), track()
        )
        assert trending(catalog, since=datetime(2024, 3, 2, 10, 0, tzinfo=UTC)) == {"y": 1}
        assert trending(catalog, since=datetime(2024, 3, 2, 9, 0, tzinfo=UTC)) == {"x": 1, "y": 1}

    def test_ties_are_ordered_by_tag_and_limit_cuts_the_ranking(self) -> None:
        catalog, track = self.fresh_catalog()
        counts = {"mango": 3, "b_c": 2, "bc": 2, "apple": 2, "zebra": 2, "kiwi": 1, "Äpfel": 2}
        for tag, count in counts.items():
            for n in range(count):
                catalog.add_post(tagged("a", tag, posted_at=NOW - timedelta(hours=n)), track())
        expected = ["mango", "apple", "b_c", "bc", "zebra", "äpfel", "kiwi"]  # by code point
        assert list(trending(catalog)) == expected
        assert list(trending(catalog, limit=3)) == expected[:3]
        assert list(trending(catalog, limit=1)) == ["mango"]
        assert list(trending(catalog, limit=100)) == expected
        assert catalog.trending_hashtags(DAY_AGO, 0) == []
        assert len(catalog.trending_hashtags(DAY_AGO)) == 7  # the default limit is 10

    def test_the_default_limit_is_ten(self) -> None:
        catalog, track = self.fresh_catalog()
        for n in range(12):
            catalog.add_post(tagged("a", f"tag{n:02}"), track())
        assert list(trending(catalog)) == [f"tag{n:02}" for n in range(10)]
        assert len(catalog.popular_users()) == 0
        for n in range(12):
            catalog.add_user(user(f"user{n:02}"), track())
        assert ranked(catalog) == [f"user{n:02}" for n in range(10)]

    # -- popular users -----------------------------------------------------------

    def test_popular_users_rank_by_followers_then_username_key(self) -> None:
        catalog, track = self.fresh_catalog()
        followers = {"carol": 3, "Bob": 1, "alice": 1, "Zed": 0, "adam": 0, "a_b": 0, "ab": 0}
        for name, count in followers.items():
            catalog.add_user(user(name, followers_count=count), track())
        # Ties by username_key in code point order: not "Zed" before "adam".
        expected = ["carol", "alice", "Bob", "a_b", "ab", "adam", "Zed"]
        assert ranked(catalog) == expected
        assert ranked(catalog, limit=2) == expected[:2]
        assert ranked(catalog, limit=100) == expected
        assert catalog.popular_users(0) == []
        found = catalog.users(name for name in followers)
        assert catalog.popular_users(3) == [found["carol"], found["alice"], found["bob"]]

    def test_popular_users_leave_out_the_excluded_case_insensitively(self) -> None:
        catalog, track = self.fresh_catalog()
        for name, count in {"carol": 3, "Bob": 2, "alice": 1, "dave": 0, "eve": 0}.items():
            catalog.add_user(user(name, followers_count=count), track())
        assert ranked(catalog, exclude=("CAROL", "bob", "nobody")) == ["alice", "dave", "eve"]
        assert ranked(catalog, limit=2, exclude=("Carol",)) == ["Bob", "alice"]
        assert ranked(catalog, limit=2, exclude=("carol", "CAROL", "Carol")) == ["Bob", "alice"]
        assert ranked(catalog, exclude=("alice", "bob", "carol", "dave", "eve")) == []
        # An iterator of names does as well as a tuple.
        assert [u.username for u in catalog.popular_users(1, iter(["carol"]))] == ["Bob"]
        # Excluding many names at once (more than any adapter would bind one by one).
        many = [f"ghost{n}" for n in range(2_000)] + ["carol"]
        assert [u.username for u in catalog.popular_users(2, many)] == ["Bob", "alice"]

    def test_follows_and_unfollows_reorder_popular_users(self) -> None:
        catalog, track = self.fresh_catalog()
        for name in ("alice", "bob", "carol", "dave"):
            catalog.add_user(user(name), track())
        assert ranked(catalog) == ["alice", "bob", "carol", "dave"]
        catalog.record_follow("alice", "dave", +1, track())
        catalog.record_follow("bob", "dave", +1, track())
        catalog.record_follow("alice", "carol", +1, track())
        assert ranked(catalog) == ["dave", "carol", "alice", "bob"]
        catalog.record_follow("alice", "dave", -1, track())
        catalog.record_follow("bob", "dave", -1, track())
        catalog.record_follow("ghost", "bob", +1, track())  # an unknown follower still counts
        assert ranked(catalog) == ["bob", "carol", "alice", "dave"]
        assert ranked(catalog, limit=1, exclude=("BOB",)) == ["carol"]

    # -- tracking: exactly once ------------------------------------------------

    def test_max_tracking_id_advances_with_every_write(self) -> None:
        catalog = self.make_catalog()
        hello = post("alice")
        catalog.add_user(user("alice"), Tracking(APP, 1))
        assert catalog.max_tracking_id(APP) == 1
        catalog.update_profile("alice", "A", "", Tracking(APP, 2))
        assert catalog.max_tracking_id(APP) == 2
        catalog.add_user(user("bob"), Tracking(APP, 3))
        catalog.record_follow("alice", "bob", +1, Tracking(APP, 5))  # gaps are fine
        assert catalog.max_tracking_id(APP) == 5
        catalog.add_post(hello, Tracking(APP, 6))
        assert catalog.max_tracking_id(APP) == 6
        catalog.remove_post(hello.id, Tracking(APP, 7))
        assert catalog.max_tracking_id(APP) == 7
        catalog.insert_tracking(Tracking(APP, 8))  # an event the catalog ignores
        assert catalog.max_tracking_id(APP) == 8
        assert catalog.has_tracking_id(APP, 8)
        assert not catalog.has_tracking_id(APP, 9)

    def test_positions_are_tracked_per_application(self) -> None:
        catalog = self.make_catalog()
        catalog.add_user(user("alice"), Tracking(APP, 10))
        catalog.add_user(user("bob"), Tracking("other", 1))
        assert catalog.max_tracking_id(APP) == 10
        assert catalog.max_tracking_id("other") == 1
        assert catalog.max_tracking_id("unknown") is None

    @pytest.mark.parametrize("stale_id", [3, 2], ids=["same-position", "earlier-position"])
    @pytest.mark.parametrize(
        "write",
        [
            "add_user",
            "update_profile",
            "follow",
            "unfollow",
            "add_post",
            "remove_post",
            "insert_tracking",
        ],
    )
    def test_a_write_at_a_position_already_passed_raises_and_changes_nothing(
        self, write: str, stale_id: int
    ) -> None:
        catalog = self.make_catalog()
        alice, bob = user("alice"), user("bob")
        hello = tagged("alice", "python", "Django")
        catalog.add_user(alice, Tracking(APP, 1))
        catalog.add_user(bob, Tracking(APP, 2))
        catalog.add_post(hello, Tracking(APP, 3))
        before_users = catalog.users(["alice", "bob", "carol"])
        before_posts = catalog.posts([hello.id])
        before_trending = trending(catalog)
        before_popular = catalog.popular_users()
        assert before_trending == {"django": 1, "python": 1}

        stale = Tracking(APP, stale_id)
        new_post = tagged("bob", "python", "rust")
        attempts: dict[str, Callable[[], None]] = {
            "add_user": lambda: catalog.add_user(user("carol"), stale),
            "update_profile": lambda: catalog.update_profile("alice", "X", "Y", stale),
            "follow": lambda: catalog.record_follow("alice", "bob", +1, stale),
            "unfollow": lambda: catalog.record_follow("alice", "bob", -1, stale),
            "add_post": lambda: catalog.add_post(new_post, stale),
            "remove_post": lambda: catalog.remove_post(hello.id, stale),
            "insert_tracking": lambda: catalog.insert_tracking(stale),
        }
        with pytest.raises(IntegrityError):
            attempts[write]()

        assert catalog.users(["alice", "bob", "carol"]) == before_users
        assert catalog.posts([hello.id, new_post.id]) == before_posts
        assert trending(catalog) == before_trending
        assert catalog.popular_users() == before_popular
        assert catalog.max_tracking_id(APP) == 3

        # The catalog is still usable, from the next position on.
        catalog.record_follow("alice", "bob", +1, Tracking(APP, 4))
        assert catalog.users(["bob"])["bob"].followers_count == 1

    def test_of_concurrent_writes_at_one_position_exactly_one_wins(self) -> None:
        catalog = self.make_catalog()
        catalog.add_user(user("alice"), Tracking(APP, 1))
        contenders = [tagged("alice", "race", f"tag{n}") for n in range(6)]
        barrier = threading.Barrier(len(contenders))
        outcomes: list[str] = []

        def contend(candidate: PostView) -> None:
            barrier.wait()
            try:
                catalog.add_post(candidate, Tracking(APP, 2))
            except IntegrityError:
                outcomes.append("rejected")
            else:
                outcomes.append("written")

        threads = [threading.Thread(target=contend, args=(c,)) for c in contenders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(outcomes) == ["rejected"] * (len(contenders) - 1) + ["written"]
        assert len(catalog.posts([c.id for c in contenders])) == 1
        assert catalog.users(["alice"])["alice"].posts_count == 1
        assert trending(catalog)["race"] == 1
        assert sum(trending(catalog).values()) == 2
        assert catalog.max_tracking_id(APP) == 2

    def test_replaying_events_already_projected_changes_nothing(self) -> None:
        catalog = self.make_catalog()
        hello = tagged("alice", "python")
        gone = tagged("bob", "python", "rust")
        writes: list[Callable[[Tracking], None]] = [
            lambda t: catalog.add_user(user("alice"), t),
            lambda t: catalog.add_user(user("bob"), t),
            lambda t: catalog.record_follow("bob", "alice", +1, t),
            lambda t: catalog.add_post(hello, t),
            lambda t: catalog.add_post(gone, t),
            lambda t: catalog.remove_post(gone.id, t),
        ]
        for position, write in enumerate(writes, start=1):
            write(Tracking(APP, position))
        expected_users = catalog.users(["alice", "bob"])
        assert trending(catalog) == {"python": 1}

        for position, write in enumerate(writes, start=1):  # as after a crash, from the start
            with pytest.raises(IntegrityError):
                write(Tracking(APP, position))

        assert catalog.users(["alice", "bob"]) == expected_users
        assert expected_users["alice"] == user("alice", followers_count=1, posts_count=1)
        assert trending(catalog) == {"python": 1}
        assert ranked(catalog) == ["alice", "bob"]
        assert catalog.posts([hello.id]) == {hello.id: hello}
        assert catalog.max_tracking_id(APP) == len(writes)

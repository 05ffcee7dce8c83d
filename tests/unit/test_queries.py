"""Feeds through the Chirp facade, fully in memory: what each feed holds, its
order, paging, enrichment from the catalog, deleted posts and query errors."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.catalog import Catalog, PostView, ShownPost, UserView
from application.feed_names import user_feed
from application.feeds import FeedUnavailableError, StoredActivity
from application.queries import Author, FeedPage, InvalidCursor, InvalidQuery, encode_cursor
from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from domain.errors import TweetNotFound, UserNotFound
from domain.tweet import TextEntity

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def new_chirp(read_own_writes: bool = True) -> Chirp:
    return build_chirp(Settings(database_url="memory:"), read_own_writes)


@pytest.fixture
def chirp() -> Iterator[Chirp]:
    service = new_chirp()
    service.register("Alice", "Alice Liddell")
    service.register("bob", "Bob B.")
    service.register("Carol")
    yield service
    service.close()


def ids(page: FeedPage) -> list[UUID]:
    return [item.post_id for item in page.items]


def texts(page: FeedPage) -> list[str]:
    return [item.text for item in page.items]


# -- what each feed holds ----------------------------------------------------------


def test_profile_feed_holds_the_users_own_posts(chirp: Chirp) -> None:
    a1 = chirp.post("alice", "a1", at(1))
    chirp.post("bob", "b1", at(2))
    a2 = chirp.post("Alice", "a2", at(3))
    page = chirp.queries.profile_feed("ALICE")
    assert ids(page) == [a2, a1]
    assert page.next_cursor is None
    assert texts(chirp.queries.profile_feed("bob")) == ["b1"]
    assert chirp.queries.profile_feed("carol").items == []


def test_home_timeline_holds_own_followed_and_mentioning_posts(chirp: Chirp) -> None:
    chirp.register("dave")
    chirp.follow("bob", "alice")
    own = chirp.post("bob", "my own", at(1))
    followed = chirp.post("alice", "from a followee", at(2))
    mentioning = chirp.post("carol", "hey @Bob", at(3))
    chirp.post("carol", "not for bob", at(4))
    chirp.post("dave", "mentions @alice only", at(5))
    assert ids(chirp.queries.home_timeline("Bob")) == [mentioning, followed, own]


def test_following_brings_earlier_posts_into_the_timeline(chirp: Chirp) -> None:
    earlier = chirp.post("alice", "before the follow", at(1))
    assert chirp.queries.home_timeline("bob").items == []
    chirp.follow("bob", "alice")
    assert ids(chirp.queries.home_timeline("bob")) == [earlier]


def test_following_copies_only_the_configured_number_of_earlier_posts() -> None:
    chirp = build_chirp(Settings(database_url="memory:", follow_copy_limit=2))
    chirp.register("alice")
    chirp.register("bob")
    posted = [chirp.post("alice", f"post {i}", at(i)) for i in range(5)]
    chirp.follow("bob", "alice")
    assert ids(chirp.queries.home_timeline("bob")) == [posted[4], posted[3]]
    later = chirp.post("alice", "after the follow", at(10))
    assert ids(chirp.queries.home_timeline("bob")) == [later, posted[4], posted[3]]
    chirp.close()


def test_hashtag_feed_is_case_insensitive(chirp: Chirp) -> None:
    first = chirp.post("alice", "#Django is nice", at(1))
    chirp.post("bob", "#python", at(2))
    second = chirp.post("bob", "so is #DJANGO and #django", at(3))
    for query in ("django", "Django", "#DJANGO", "#dJaNgO"):
        assert ids(chirp.queries.hashtag(query)) == [second, first], query
    assert texts(chirp.queries.hashtag("python")) == ["#python"]
    assert chirp.queries.hashtag("rust").items == []


def test_non_ascii_hashtag_feed(chirp: Chirp) -> None:
    post_id = chirp.post("alice", "#École #日本", at(1))
    assert ids(chirp.queries.hashtag("école")) == [post_id]
    assert ids(chirp.queries.hashtag("#日本")) == [post_id]


def test_mentions_feed(chirp: Chirp) -> None:
    first = chirp.post("alice", "@bob hi", at(1))
    chirp.post("alice", "@carol hi", at(2))
    second = chirp.post("carol", "cc @BOB", at(3))
    chirp.post("bob", "no mentions here", at(4))
    assert ids(chirp.queries.mentions("Bob")) == [second, first]
    assert texts(chirp.queries.mentions("carol")) == ["@carol hi"]
    assert chirp.queries.mentions("alice").items == []


def test_feeds_are_newest_first_whatever_the_posting_order(chirp: Chirp) -> None:
    middle = chirp.post("alice", "middle #t", at(2))
    newest = chirp.post("alice", "newest #t", at(3))
    oldest = chirp.post("alice", "oldest #t", at(1))
    assert ids(chirp.queries.profile_feed("alice")) == [newest, middle, oldest]
    assert ids(chirp.queries.hashtag("t")) == [newest, middle, oldest]


# -- enrichment ------------------------------------------------------------------


def test_items_are_enriched_from_the_catalog(chirp: Chirp) -> None:
    text = "hi @bob #Tea https://example.com"
    post_id = chirp.post("alice", text, at(7))
    [item] = chirp.queries.mentions("bob").items
    assert item.post_id == post_id
    assert (item.author.username, item.author.display_name) == ("Alice", "Alice Liddell")
    assert item.text == text
    assert item.posted_at == at(7)
    assert item.entities == (
        TextEntity("mention", "bob", 3, 7),
        TextEntity("hashtag", "Tea", 8, 12),
        TextEntity("url", "https://example.com", 13, 32),
    )


def test_author_display_name_is_current_not_as_posted(chirp: Chirp) -> None:
    chirp.post("alice", "hello", at(1))
    chirp.update_profile("alice", "Queen Alice", "")
    [item] = chirp.queries.profile_feed("alice").items
    assert item.author.display_name == "Queen Alice"


def test_display_name_defaults_to_the_username(chirp: Chirp) -> None:
    chirp.post("carol", "hello", at(1))
    [item] = chirp.queries.profile_feed("carol").items
    assert (item.author.username, item.author.display_name) == ("Carol", "Carol")


def test_user_view(chirp: Chirp) -> None:
    chirp.follow("bob", "alice")
    chirp.post("alice", "one", at(1))
    view = chirp.queries.user("ALICE")
    assert (view.username, view.display_name) == ("Alice", "Alice Liddell")
    assert (view.followers_count, view.following_count, view.posts_count) == (1, 0, 1)


# -- paging ----------------------------------------------------------------------


def walk(chirp: Chirp, limit: int) -> tuple[list[UUID], list[int]]:
    """Every post of alice's profile feed, page by page; and each page's size."""
    seen: list[UUID] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        page = chirp.queries.profile_feed("alice", limit=limit, cursor=cursor)
        seen += ids(page)
        sizes.append(len(page.items))
        if page.next_cursor is None:
            return seen, sizes
        assert len(sizes) < 100, "paging does not end"
        cursor = page.next_cursor


def test_cursor_paging_walks_every_post_once_newest_first(chirp: Chirp) -> None:
    posted = [chirp.post("alice", f"post {i}", at(i)) for i in range(60)]
    seen, sizes = walk(chirp, limit=25)
    assert sizes == [25, 25, 10]
    assert seen == posted[::-1]


def test_paging_by_one(chirp: Chirp) -> None:
    posted = [chirp.post("alice", f"post {i}", at(i)) for i in range(5)]
    seen, sizes = walk(chirp, limit=1)
    assert seen == posted[::-1]
    assert set(sizes[:5]) == {1}


def test_maximum_page_size(chirp: Chirp) -> None:
    posted = [chirp.post("alice", f"post {i}", at(i)) for i in range(101)]
    page = chirp.queries.profile_feed("alice", limit=100)
    assert ids(page) == posted[:0:-1]
    assert page.next_cursor is not None
    rest = chirp.queries.profile_feed("alice", limit=100, cursor=page.next_cursor)
    assert ids(rest) == [posted[0]]
    assert rest.next_cursor is None


def test_a_cursor_still_works_after_its_post_is_deleted(chirp: Chirp) -> None:
    posted = [chirp.post("alice", f"post {i}", at(i)) for i in range(6)]
    first = chirp.queries.profile_feed("alice", limit=3)
    assert ids(first) == posted[5:2:-1]
    chirp.delete_post(posted[3], by="alice")  # the post the cursor points at
    second = chirp.queries.profile_feed("alice", limit=3, cursor=first.next_cursor)
    assert ids(second) == posted[2::-1]


# -- deleted posts -----------------------------------------------------------------


def test_deleted_post_leaves_every_feed(chirp: Chirp) -> None:
    chirp.follow("bob", "alice")
    kept = chirp.post("alice", "kept #t @carol", at(1))
    gone = chirp.post("alice", "gone #t @carol", at(2))
    chirp.delete_post(gone, by="alice")
    queries = chirp.queries
    assert ids(queries.profile_feed("alice")) == [kept]
    assert ids(queries.home_timeline("alice")) == [kept]
    assert ids(queries.home_timeline("bob")) == [kept]
    assert ids(queries.home_timeline("carol")) == [kept]
    assert ids(queries.mentions("carol")) == [kept]
    assert ids(queries.hashtag("t")) == [kept]


def test_catalog_hides_a_post_the_feeds_still_hold() -> None:
    chirp = new_chirp(read_own_writes=False)
    chirp.register("alice")
    chirp.register("bob")
    chirp.follow("bob", "alice")
    kept = chirp.post("alice", "kept #t @bob", at(1))
    gone = chirp.post("alice", "gone #t @bob", at(2))
    chirp.sync()
    chirp.delete_post(gone, by="alice")
    chirp.catalog_follower.catch_up()  # the feed projector lags behind
    assert len(chirp.provider.read(user_feed("alice"))) == 2  # still fanned out
    queries = chirp.queries
    assert ids(queries.profile_feed("alice")) == [kept]
    assert ids(queries.home_timeline("bob")) == [kept]
    assert ids(queries.mentions("bob")) == [kept]
    assert ids(queries.hashtag("t")) == [kept]
    chirp.close()


def test_page_is_filled_past_hidden_posts_without_gap_or_repeat() -> None:
    chirp = new_chirp(read_own_writes=False)
    chirp.register("alice")
    posted = [chirp.post("alice", f"post {i}", at(i)) for i in range(60)]
    chirp.sync()
    deleted = {posted[i] for i in (59, 50, 40, 35, 34, 10)}
    for post_id in deleted:
        chirp.delete_post(post_id, by="alice")
    chirp.catalog_follower.catch_up()
    live = [post_id for post_id in posted[::-1] if post_id not in deleted]
    first = chirp.queries.profile_feed("alice", limit=25)
    assert ids(first) == live[:25]
    seen, _ = walk(chirp, limit=25)
    assert seen == live
    chirp.close()


def test_page_never_exceeds_its_limit_when_posts_are_hidden() -> None:
    # 30 posts, 3 of the newest 25 deleted but still in the feed: the first
    # read yields 22 live posts, the second the 5 older ones. The page must
    # still hold 25, with a cursor to the remaining 2.
    chirp = new_chirp(read_own_writes=False)
    chirp.register("alice")
    posted = [chirp.post("alice", f"post {i}", at(i)) for i in range(30)]
    chirp.sync()
    for i in (29, 20, 10):
        chirp.delete_post(posted[i], by="alice")
    chirp.catalog_follower.catch_up()
    live = [p for i, p in reversed(list(enumerate(posted))) if i not in (29, 20, 10)]
    page = chirp.queries.profile_feed("alice", limit=25)
    assert len(page.items) == 25
    assert ids(page) == live[:25]
    assert page.next_cursor is not None
    rest = chirp.queries.profile_feed("alice", limit=25, cursor=page.next_cursor)
    assert ids(rest) == live[25:]
    chirp.close()


# -- unfollow --------------------------------------------------------------------


def test_unfollow_removes_followee_posts_but_keeps_mentions(chirp: Chirp) -> None:
    chirp.follow("bob", "alice")
    plain = chirp.post("alice", "plain", at(1))
    mentioning = chirp.post("alice", "hi @bob", at(2))
    own = chirp.post("bob", "mine", at(3))
    assert ids(chirp.queries.home_timeline("bob")) == [own, mentioning, plain]
    chirp.unfollow("bob", "ALICE")
    assert ids(chirp.queries.home_timeline("bob")) == [own, mentioning]
    assert ids(chirp.queries.mentions("bob")) == [mentioning]
    later = chirp.post("alice", "after the unfollow", at(4))
    assert later not in ids(chirp.queries.home_timeline("bob"))


# -- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor", ["not a cursor!", "abc", "%%%%", base64.urlsafe_b64encode(b"short").decode()]
)
def test_malformed_cursor(chirp: Chirp, cursor: str) -> None:
    chirp.post("alice", "hi #t", at(1))
    with pytest.raises(InvalidCursor) as caught:
        chirp.queries.profile_feed("alice", cursor=cursor)
    assert str(caught.value) == "this page link is not valid; start again from the newest posts"
    with pytest.raises(InvalidCursor):
        chirp.queries.hashtag("t", cursor=cursor)


def test_cursor_that_is_no_activity_id(chirp: Chirp) -> None:
    # A well-formed UUID, but version 4: the feed provider never issued it.
    cursor = base64.urlsafe_b64encode(uuid4().bytes).decode().rstrip("=")
    chirp.post("alice", "hi #t", at(1))
    with pytest.raises(InvalidCursor):
        chirp.queries.profile_feed("alice", cursor=cursor)
    with pytest.raises(InvalidCursor):
        chirp.queries.hashtag("t", cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 101, 1000])
def test_bad_limit(chirp: Chirp, limit: int) -> None:
    with pytest.raises(InvalidQuery) as caught:
        chirp.queries.home_timeline("alice", limit=limit)
    assert "between 1 and 100" in str(caught.value)
    assert str(limit) in str(caught.value)
    with pytest.raises(InvalidQuery):
        chirp.queries.hashtag("t", limit=limit)


def test_unknown_user(chirp: Chirp) -> None:
    queries = chirp.queries
    for read in (queries.profile_feed, queries.home_timeline, queries.mentions, queries.user):
        with pytest.raises(UserNotFound) as caught:
            read("dave")
        assert str(caught.value) == "there is no user @dave"


def test_a_username_that_cannot_exist_is_not_found(chirp: Chirp) -> None:
    with pytest.raises(UserNotFound, match="no user @no body"):
        chirp.queries.profile_feed("no body")


@pytest.mark.parametrize("tag", ["", "#", "123", "two words", "#a#b", "tag!", "@alice"])
def test_invalid_hashtag(chirp: Chirp, tag: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        chirp.queries.hashtag(tag)
    assert "is not a hashtag" in str(caught.value)


# -- batched enrichment ------------------------------------------------------------


class SpyCatalog:
    """Records every lookup the queries make, in order, passing each on to the
    real catalog; any other use of the catalog fails (no such attribute)."""

    def __init__(self, inner: Catalog) -> None:
        self.inner = inner
        self.calls: list[tuple[str, list[Any]]] = []

    def posts(self, post_ids: Iterable[UUID]) -> dict[UUID, PostView]:
        asked = list(post_ids)
        self.calls.append(("posts", asked))
        return self.inner.posts(asked)

    def users(self, usernames: Iterable[str]) -> dict[str, UserView]:
        asked = list(usernames)
        self.calls.append(("users", asked))
        return self.inner.users(asked)

    def shown_posts(self, post_ids: Iterable[UUID]) -> dict[UUID, ShownPost]:
        asked = list(post_ids)
        self.calls.append(("shown_posts", asked))
        return self.inner.shown_posts(asked)

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


@pytest.fixture
def busy(chirp: Chirp) -> list[UUID]:
    """30 posts on #busy by three authors, bob following all of them."""
    chirp.follow("bob", "alice")
    chirp.follow("bob", "carol")
    authors = ["alice", "bob", "Carol"]
    return [chirp.post(authors[i % 3], f"#busy {i}", at(i)) for i in range(30)]


def spy_on(chirp: Chirp) -> SpyCatalog:
    spy = SpyCatalog(chirp.queries.catalog)
    chirp.queries.catalog = spy  # type: ignore[assignment]
    return spy


BUSY_NAMES = {"Alice Liddell", "Bob B.", "Carol"}


def test_a_hashtag_page_costs_one_catalog_lookup(chirp: Chirp, busy: list[UUID]) -> None:
    spy = spy_on(chirp)
    page = chirp.queries.hashtag("busy", limit=25)
    assert ids(page) == busy[:4:-1]
    assert spy.methods() == ["shown_posts"]
    assert sorted(spy.calls[0][1]) == sorted(busy[5:])
    assert {item.author.display_name for item in page.items} == BUSY_NAMES


@pytest.mark.parametrize("read", ["home_timeline", "profile_feed", "mentions"])
def test_a_page_of_25_of_a_users_feed_costs_one_catalog_lookup(
    chirp: Chirp, busy: list[UUID], read: str
) -> None:
    chirp.post("carol", "hi @bob", at(40))
    spy = spy_on(chirp)
    page = getattr(chirp.queries, read)("Bob", limit=25)
    assert len(page.items) == {"home_timeline": 25, "profile_feed": 10, "mentions": 1}[read]
    # No lookup of bob himself: a non-empty feed proves he exists.
    assert spy.methods() == ["shown_posts"]
    assert sorted(spy.calls[0][1]) == sorted(ids(page))


def test_a_home_timeline_page_of_25_costs_exactly_one_catalog_call(
    chirp: Chirp, busy: list[UUID]
) -> None:
    spy = spy_on(chirp)
    page = chirp.queries.home_timeline("bob", limit=25)
    assert ids(page) == busy[:4:-1]
    assert page.next_cursor is not None
    assert len(spy.calls) == 1
    assert spy.calls[0][0] == "shown_posts"
    assert sorted(spy.calls[0][1]) == sorted(busy[5:])
    assert {item.author.display_name for item in page.items} == BUSY_NAMES


def test_the_next_page_costs_the_same(chirp: Chirp, busy: list[UUID]) -> None:
    first = chirp.queries.hashtag("busy", limit=25)
    timeline = chirp.queries.home_timeline("bob", limit=25)
    spy = spy_on(chirp)
    rest = chirp.queries.hashtag("busy", limit=25, cursor=first.next_cursor)
    assert ids(rest) == busy[4::-1]
    assert spy.methods() == ["shown_posts"]
    spy.calls.clear()
    rest = chirp.queries.home_timeline("bob", limit=25, cursor=timeline.next_cursor)
    assert ids(rest) == busy[4::-1]
    assert spy.methods() == ["shown_posts"]


@pytest.mark.parametrize("read", ["home_timeline", "profile_feed", "mentions", "notifications"])
def test_an_empty_page_of_an_existing_user_costs_the_user_check(
    chirp: Chirp, busy: list[UUID], read: str
) -> None:
    chirp.register("Dave")
    spy = spy_on(chirp)
    page = getattr(chirp.queries, read)("DAVE")
    assert page.items == []
    assert page.next_cursor is None
    assert spy.calls == [("users", ["DAVE"])]  # no lookup of posts when there are none


def test_a_page_past_the_last_of_an_existing_user_is_empty(chirp: Chirp) -> None:
    chirp.post("alice", "only post", at(1))
    first = chirp.queries.profile_feed("alice")
    cursor = encode_cursor(chirp.provider.read(user_feed("alice"))[0].id)
    assert first.next_cursor is None
    spy = spy_on(chirp)
    assert chirp.queries.profile_feed("alice", cursor=cursor).items == []
    assert spy.calls == [("users", ["alice"])]


UNKNOWN_USER_READS = ["profile_feed", "home_timeline", "mentions", "notifications"]


@pytest.mark.parametrize("read", UNKNOWN_USER_READS)
def test_an_unknown_user_is_not_found_with_or_without_a_cursor(
    chirp: Chirp, busy: list[UUID], read: str
) -> None:
    # A cursor valid for another feed: the unknown user's feed is read, and empty.
    cursor = chirp.queries.hashtag("busy", limit=5).next_cursor
    assert cursor is not None
    spy = spy_on(chirp)
    for page_cursor in (None, cursor):
        with pytest.raises(UserNotFound) as caught:
            getattr(chirp.queries, read)("dave", cursor=page_cursor)
        assert str(caught.value) == "there is no user @dave"
    assert spy.calls == [("users", ["dave"])] * 2


@pytest.mark.parametrize("read", UNKNOWN_USER_READS)
def test_an_unknown_user_is_reported_before_a_bad_limit_or_cursor(chirp: Chirp, read: str) -> None:
    query = getattr(chirp.queries, read)
    with pytest.raises(UserNotFound, match="no user @dave"):
        query("dave", limit=0)
    with pytest.raises(UserNotFound, match="no user @dave"):
        query("dave", cursor="not a cursor!")
    with pytest.raises(UserNotFound, match="no user @no body"):
        query("no body", limit=0)
    # A known user still gets the error of the read.
    with pytest.raises(InvalidQuery):
        query("alice", limit=0)
    with pytest.raises(InvalidCursor):
        query("alice", cursor="not a cursor!")


@pytest.mark.parametrize("read", UNKNOWN_USER_READS)
def test_an_unknown_user_is_reported_before_a_feed_outage(
    chirp: Chirp, monkeypatch: pytest.MonkeyPatch, read: str
) -> None:
    def unreachable(*args: object, **kwargs: object) -> list[StoredActivity]:
        raise FeedUnavailableError("feed service unreachable")

    monkeypatch.setattr(chirp.queries.provider, "read", unreachable)
    query = getattr(chirp.queries, read)
    with pytest.raises(UserNotFound, match="no user @dave"):
        query("dave")
    with pytest.raises(FeedUnavailableError):
        query("alice")


def test_notifications_show_followers_and_mentions_in_two_lookups(chirp: Chirp) -> None:
    chirp.follow("alice", "bob")
    mention = chirp.post("Carol", "hi @bob", at(5))
    chirp.follow("carol", "bob")
    spy = spy_on(chirp)
    page = chirp.queries.notifications("bob")
    assert [(n.kind, n.actor) for n in page.items] == [  # follows are timed now, after at(5)
        ("follow", Author("Carol", "Carol")),
        ("follow", Author("Alice", "Alice Liddell")),
        ("mention", Author("Carol", "Carol")),
    ]
    mentioned = page.items[2].post
    assert mentioned is not None
    assert (mentioned.post_id, mentioned.text, page.items[2].at) == (mention, "hi @bob", at(5))
    assert spy.methods() == ["shown_posts", "users"]
    assert spy.calls[0][1] == [mention]
    assert sorted(name.lower() for name in spy.calls[1][1]) == ["alice", "carol"]


def test_notifications_of_mentions_only_skip_the_followers_lookup(chirp: Chirp) -> None:
    chirp.post("alice", "hi @bob", at(1))
    chirp.post("carol", "yo @bob", at(2))
    spy = spy_on(chirp)
    page = chirp.queries.notifications("bob")
    assert [(n.kind, n.actor.display_name) for n in page.items] == [
        ("mention", "Carol"),
        ("mention", "Alice Liddell"),
    ]
    assert spy.methods() == ["shown_posts"]


def test_notifications_of_follows_only_skip_the_posts_lookup(chirp: Chirp) -> None:
    chirp.follow("alice", "bob")
    spy = spy_on(chirp)
    [follow] = chirp.queries.notifications("bob").items
    assert (follow.kind, follow.actor, follow.post) == (
        "follow",
        Author("Alice", "Alice Liddell"),
        None,
    )
    assert spy.calls == [("users", ["Alice"])]


def test_a_post_costs_one_catalog_lookup(chirp: Chirp) -> None:
    post_id = chirp.post("alice", "hello", at(1))
    spy = spy_on(chirp)
    item = chirp.queries.post(post_id)
    assert (item.post_id, item.author, item.text) == (
        post_id,
        Author("Alice", "Alice Liddell"),
        "hello",
    )
    assert spy.calls == [("shown_posts", [post_id])]
    with pytest.raises(TweetNotFound):
        chirp.queries.post(uuid4())

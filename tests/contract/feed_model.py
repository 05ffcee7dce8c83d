"""A Hypothesis state machine checking Chirp's feeds against a pure reference model.

Random register / post / delete / follow / unfollow commands, invalid ones
included, run through the application (commands, projectors, feed provider,
catalog, queries). After every step each feed read through the queries must
equal what the small model below says, written from the product rules alone
(it shares no code with the projector). At the end of each run the feeds are
rebuilt by replaying the event log, and must equal the incrementally built ones.

``make_machine(build)`` returns a ``RuleBasedStateMachine`` class for a given
way to build Chirp, so every feed adapter runs the same machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from application.feed_names import hashtag_feed, mentions_feed, timeline_feed, user_feed
from application.feeds import FeedProvider
from application.replay import replay_feeds
from application.service import Chirp
from domain.errors import (
    AlreadyFollowing,
    CannotFollowSelf,
    DomainError,
    InvalidTweetText,
    InvalidUsername,
    NotFollowing,
    NotTheAuthor,
    TweetAlreadyDeleted,
    UsernameTaken,
    UserNotFound,
)

COPY_LIMIT = 2  # low, so copy-on-follow limits are exercised
NAMES = ["alice", "Bob", "carol", "dave", "eve"]
BAD_NAMES = ["al ice", "", "x" * 16, "bob!"]
TAGS = ["Django", "django", "python", "Chirp"]
WORDS = ["hello", "world", "ok", "note"]
START = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class ModelPost:
    id: UUID
    author: str  # lower-cased
    time: datetime
    mentions: frozenset[str]  # lower-cased, registered, not the author
    tags: frozenset[str]  # lower-cased


@dataclass
class Model:
    """Chirp's feeds as sets of post ids, from the product rules."""

    users: set[str] = field(default_factory=set)
    follows: dict[str, set[str]] = field(default_factory=dict)
    posts: dict[UUID, ModelPost] = field(default_factory=dict)
    timelines: dict[str, set[UUID]] = field(default_factory=dict)

    def register(self, key: str) -> None:
        self.users.add(key)
        self.follows[key] = set()
        self.timelines[key] = set()

    def post(self, post: ModelPost) -> None:
        self.posts[post.id] = post
        for user in self.users:
            if user == post.author or post.author in self.follows[user]:
                self.timelines[user].add(post.id)
        for mentioned in post.mentions:
            self.timelines[mentioned].add(post.id)

    def delete(self, post_id: UUID) -> None:
        del self.posts[post_id]
        for timeline in self.timelines.values():
            timeline.discard(post_id)

    def follow(self, follower: str, followee: str) -> None:
        self.follows[follower].add(followee)
        newest = self.newest_first(p for p in self.posts.values() if p.author == followee)
        self.timelines[follower].update(newest[:COPY_LIMIT])

    def unfollow(self, follower: str, followee: str) -> None:
        self.follows[follower].discard(followee)
        self.timelines[follower] -= {
            p.id for p in self.posts.values() if p.author == followee and follower not in p.mentions
        }

    def newest_first(self, posts: Iterable[ModelPost]) -> list[UUID]:
        return [p.id for p in sorted(posts, key=lambda p: p.time, reverse=True)]

    def profile(self, user: str) -> list[UUID]:
        return self.newest_first(p for p in self.posts.values() if p.author == user)

    def home(self, user: str) -> list[UUID]:
        return self.newest_first(self.posts[i] for i in self.timelines[user])

    def mentions(self, user: str) -> list[UUID]:
        return self.newest_first(p for p in self.posts.values() if user in p.mentions)

    def hashtag(self, tag: str) -> list[UUID]:
        return self.newest_first(p for p in self.posts.values() if tag in p.tags)


text_tokens = st.lists(
    st.one_of(
        st.sampled_from(WORDS),
        st.sampled_from(TAGS).map(lambda t: "#" + t),
        st.sampled_from([*NAMES, "zed", "ALICE"]).map(lambda n: "@" + n),
    ),
    min_size=1,
    max_size=6,
)


def read_all(read_page: Callable[[str | None], tuple[list[UUID], str | None]]) -> list[UUID]:
    ids: list[UUID] = []
    cursor: str | None = None
    while True:
        page, cursor = read_page(cursor)
        ids += page
        if cursor is None:
            return ids


def make_machine(build: Callable[[], Chirp], fresh_provider: Callable[[], FeedProvider]) -> type:
    """A state machine class over Chirp instances made by ``build``;
    ``fresh_provider`` gives the empty provider replays are checked into."""

    class ChirpFeedsMachine(RuleBasedStateMachine):
        posts = Bundle("posts")

        def __init__(self) -> None:
            super().__init__()
            self.chirp = build()
            self.model = Model()
            self.clock = START

        def teardown(self) -> None:
            try:
                self.check_replay_equals_incremental()
            finally:
                self.chirp.close()

        # -- helpers ---------------------------------------------------------

        def events(self) -> int:
            return self.chirp.commands.recorder.max_notification_id() or 0

        def rejected(self, command: Callable[[], object], error: type[DomainError]) -> None:
            before = self.events()
            try:
                command()
            except error:
                pass
            else:
                raise AssertionError(f"expected {error.__name__}")
            assert self.events() == before, "a rejected command stored an event"

        # -- rules -----------------------------------------------------------

        @initialize()
        def register_first(self) -> None:
            self.chirp.register("alice", "Alice")
            self.model.register("alice")

        @rule(name=st.sampled_from([*NAMES, "ALICE", "bob"]))
        def register(self, name: str) -> None:
            if name.lower() in self.model.users:
                self.rejected(lambda: self.chirp.register(name), UsernameTaken)
            else:
                self.chirp.register(name)
                self.model.register(name.lower())

        @rule(name=st.sampled_from(BAD_NAMES))
        def register_invalid(self, name: str) -> None:
            self.rejected(lambda: self.chirp.register(name), InvalidUsername)

        @rule(target=posts, data=st.data(), tokens=text_tokens, repeat=st.integers(1, 3))
        def post(
            self, data: st.DataObject, tokens: list[str], repeat: int
        ) -> MultipleResults[UUID | None]:
            """``repeat`` posts by one author, so feeds outgrow the copy limit."""
            author = data.draw(st.sampled_from([*self.registered(), *NAMES]))
            key = author.lower()
            text = " ".join(tokens)
            if key not in self.model.users:
                self.rejected(lambda: self.chirp.post(author, text), UserNotFound)
                return multiple()
            mentions = {t[1:].lower() for t in tokens if t.startswith("@")}
            tags = frozenset(t[1:].lower() for t in tokens if t.startswith("#"))
            resolved = frozenset(m for m in mentions if m in self.model.users and m != key)
            post_ids = []
            for _ in range(repeat):
                self.clock += timedelta(seconds=1)
                post_id = self.chirp.post(author, text, self.clock)
                self.model.post(ModelPost(post_id, key, self.clock, resolved, tags))
                post_ids.append(post_id)
            return multiple(*post_ids)

        @rule(author=st.sampled_from(NAMES), text=st.sampled_from(["", "   ", "a" * 281]))
        def post_invalid(self, author: str, text: str) -> None:
            expected = InvalidTweetText if author.lower() in self.model.users else UserNotFound
            self.rejected(lambda: self.chirp.post(author, text), expected)

        @rule(post_id=consumes(posts))
        def delete(self, post_id: UUID | None) -> None:
            if post_id is None:
                return
            author = self.model.posts[post_id].author
            self.chirp.delete_post(post_id, author.upper())
            self.model.delete(post_id)

        @rule(post_id=posts, by=st.sampled_from(NAMES))
        def delete_invalid(self, post_id: UUID | None, by: str) -> None:
            if post_id is None or by.lower() not in self.model.users:
                return
            post = self.model.posts.get(post_id)
            if post is None:
                self.rejected(lambda: self.chirp.delete_post(post_id, by), TweetAlreadyDeleted)
            elif post.author != by.lower():
                self.rejected(lambda: self.chirp.delete_post(post_id, by), NotTheAuthor)

        def registered(self) -> list[str]:
            return sorted(self.model.users)

        @precondition(lambda self: len(self.model.users) >= 2)
        @rule(data=st.data())
        def follow(self, data: st.DataObject) -> None:
            follower = data.draw(st.sampled_from(self.registered()))
            followee = data.draw(st.sampled_from(self.registered()))
            # Users are registered in any case; commands take any case.
            follower, followee = follower.upper(), followee.capitalize()
            f, e = follower.lower(), followee.lower()
            if f == e:
                self.rejected(lambda: self.chirp.follow(follower, followee), CannotFollowSelf)
            elif e in self.model.follows[f]:
                self.rejected(lambda: self.chirp.follow(follower, followee), AlreadyFollowing)
            else:
                self.chirp.follow(follower, followee)
                self.model.follow(f, e)

        @rule(follower=st.sampled_from(NAMES), followee=st.sampled_from(NAMES))
        def follow_or_unfollow_unknown(self, follower: str, followee: str) -> None:
            f, e = follower.lower(), followee.lower()
            if f in self.model.users and e in self.model.users:
                return
            self.rejected(lambda: self.chirp.follow(follower, followee), UserNotFound)
            if f not in self.model.users:
                self.rejected(lambda: self.chirp.unfollow(follower, followee), UserNotFound)
            else:
                self.rejected(lambda: self.chirp.unfollow(follower, followee), NotFollowing)

        @precondition(lambda self: any(self.model.follows.values()))
        @rule(data=st.data())
        def unfollow(self, data: st.DataObject) -> None:
            edges = sorted((f, e) for f, es in self.model.follows.items() for e in es)
            follower, followee = data.draw(st.sampled_from(edges))
            self.chirp.unfollow(follower, followee)
            self.model.unfollow(follower, followee)

        @precondition(lambda self: len(self.model.users) >= 2)
        @rule(data=st.data())
        def unfollow_stranger(self, data: st.DataObject) -> None:
            follower = data.draw(st.sampled_from(self.registered()))
            strangers = [u for u in self.registered() if u not in self.model.follows[follower]]
            followee = data.draw(st.sampled_from(strangers))
            self.rejected(lambda: self.chirp.unfollow(follower, followee), NotFollowing)

        @invariant()
        def feeds_match_model(self) -> None:
            queries = self.chirp.queries
            for user in sorted(self.model.users):

                def profile(c: str | None, u: str = user) -> tuple[list[UUID], str | None]:
                    page = queries.profile_feed(u, limit=2, cursor=c)
                    return [i.post_id for i in page.items], page.next_cursor

                def home(c: str | None, u: str = user) -> tuple[list[UUID], str | None]:
                    page = queries.home_timeline(u, limit=3, cursor=c)
                    return [i.post_id for i in page.items], page.next_cursor

                def mentions(c: str | None, u: str = user) -> tuple[list[UUID], str | None]:
                    page = queries.mentions(u, limit=3, cursor=c)
                    return [i.post_id for i in page.items], page.next_cursor

                assert read_all(profile) == self.model.profile(user), f"profile of {user}"
                assert read_all(home) == self.model.home(user), f"home timeline of {user}"
                assert read_all(mentions) == self.model.mentions(user), f"mentions of {user}"
            for tag in {t.lower() for t in TAGS}:

                def hashtag(c: str | None, t: str = tag) -> tuple[list[UUID], str | None]:
                    page = queries.hashtag(t.upper(), limit=3, cursor=c)
                    return [i.post_id for i in page.items], page.next_cursor

                assert read_all(hashtag) == self.model.hashtag(tag), f"#{tag}"

        def check_replay_equals_incremental(self) -> None:
            rebuilt = fresh_provider()
            report = replay_feeds(self.chirp.commands, rebuilt, COPY_LIMIT)
            assert report.events == self.events()
            feeds = [hashtag_feed(t) for t in TAGS]
            for user in self.model.users:
                feeds += [user_feed(user), timeline_feed(user), mentions_feed(user)]
            for feed in feeds:
                incremental = self.chirp.provider.read(feed, limit=100)
                replayed = rebuilt.read(feed, limit=100)
                assert [a.id for a in replayed] == [a.id for a in incremental], str(feed)

    return ChirpFeedsMachine

"""ChirpApplication with in-memory persistence: each command stores its events,
each rejected command raises a DomainError and stores nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from application.commands import ChirpApplication
from domain.errors import (
    AlreadyFollowing,
    CannotFollowSelf,
    DomainError,
    InvalidDisplayName,
    InvalidTweetText,
    InvalidUsername,
    NotFollowing,
    NotTheAuthor,
    PostKeyReused,
    TweetAlreadyDeleted,
    TweetNotFound,
    UsernameTaken,
    UserNotFound,
)
from domain.tweet import TextEntity, Tweet, post_id_for_key
from domain.user import User


@pytest.fixture
def app() -> Iterator[ChirpApplication]:
    application = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield application
    application.close()


@pytest.fixture
def people(app: ChirpApplication) -> ChirpApplication:
    app.register("Alice", "Alice L.")
    app.register("bob")
    app.register("Carol")
    return app


def stored_events(app: ChirpApplication) -> list[object]:
    notifications = app.recorder.select_notifications(start=1, limit=1000)
    return [app.mapper.to_domain_event(n) for n in notifications]


def assert_rejected(
    app: ChirpApplication, error: type[DomainError], command: Callable[[], object]
) -> str:
    """Run ``command``, check it raises ``error`` and stores no event; return the message."""
    before = app.recorder.max_notification_id()
    with pytest.raises(error) as caught:
        command()
    assert app.recorder.max_notification_id() == before
    return str(caught.value)


# -- registration ----------------------------------------------------------------


def test_register_stores_one_event(app: ChirpApplication) -> None:
    user = app.register("Alice", "Alice L.")
    assert app.recorder.max_notification_id() == 1
    events = stored_events(app)
    assert [type(e) for e in events] == [User.Registered]
    loaded = app.get_user("alice")
    assert (loaded.id, loaded.username, loaded.display_name) == (user.id, "Alice", "Alice L.")


@pytest.mark.parametrize("again", ["Alice", "alice", "ALICE", "aLiCe"])
def test_username_is_taken_in_any_case(app: ChirpApplication, again: str) -> None:
    app.register("Alice")
    message = assert_rejected(app, UsernameTaken, lambda: app.register(again, "Someone else"))
    assert "already taken" in message
    assert again in message
    assert app.get_user("alice").display_name == "Alice"
    assert app.recorder.max_notification_id() == 1


def test_register_invalid_username_stores_nothing(app: ChirpApplication) -> None:
    message = assert_rejected(app, InvalidUsername, lambda: app.register("al ice"))
    assert "may only contain letters, digits and _" in message
    assert app.recorder.max_notification_id() is None


def test_register_invalid_display_name_stores_nothing(app: ChirpApplication) -> None:
    assert_rejected(app, InvalidDisplayName, lambda: app.register("alice", "x" * 51))
    assert_rejected(app, UserNotFound, lambda: app.get_user("alice"))


def test_get_unknown_user(app: ChirpApplication) -> None:
    message = assert_rejected(app, UserNotFound, lambda: app.get_user("nobody"))
    assert message == "there is no user @nobody"


def test_get_user_with_an_invalid_name(app: ChirpApplication) -> None:
    assert_rejected(app, InvalidUsername, lambda: app.get_user("no body"))


# -- profile ---------------------------------------------------------------------


def test_update_profile_stores_an_event(people: ChirpApplication) -> None:
    people.update_profile("ALICE", "Alice Liddell", "curious")
    user = people.get_user("alice")
    assert (user.display_name, user.bio) == ("Alice Liddell", "curious")
    assert isinstance(stored_events(people)[-1], User.ProfileUpdated)


def test_unchanged_profile_stores_nothing(people: ChirpApplication) -> None:
    before = people.recorder.max_notification_id()
    people.update_profile("alice", "Alice L.", "")
    assert people.recorder.max_notification_id() == before


def test_update_profile_of_unknown_user(people: ChirpApplication) -> None:
    assert_rejected(people, UserNotFound, lambda: people.update_profile("dave", "Dave", ""))


def test_update_profile_with_too_long_bio(people: ChirpApplication) -> None:
    assert_rejected(people, DomainError, lambda: people.update_profile("alice", "A", "b" * 161))
    assert people.get_user("alice").display_name == "Alice L."


# -- follows ---------------------------------------------------------------------


def test_follow_records_the_canonical_followee(people: ChirpApplication) -> None:
    people.follow("BOB", "alice")
    event = stored_events(people)[-1]
    assert isinstance(event, User.Followed)
    assert (event.follower, event.followee) == ("bob", "Alice")
    assert people.get_user("bob").follows("ALICE")


def test_follow_unknown_user(people: ChirpApplication) -> None:
    message = assert_rejected(people, UserNotFound, lambda: people.follow("alice", "dave"))
    assert "@dave" in message


def test_unknown_user_cannot_follow(people: ChirpApplication) -> None:
    assert_rejected(people, UserNotFound, lambda: people.follow("dave", "alice"))


def test_follow_invalid_username(people: ChirpApplication) -> None:
    assert_rejected(people, InvalidUsername, lambda: people.follow("alice", "bad name"))


def test_follow_self_in_any_case(people: ChirpApplication) -> None:
    assert_rejected(people, CannotFollowSelf, lambda: people.follow("alice", "ALICE"))


def test_follow_twice_in_any_case(people: ChirpApplication) -> None:
    people.follow("alice", "bob")
    message = assert_rejected(people, AlreadyFollowing, lambda: people.follow("Alice", "BOB"))
    assert "already follow @bob" in message


def test_unfollow_records_an_event(people: ChirpApplication) -> None:
    people.follow("alice", "carol")
    people.unfollow("alice", "CAROL")
    event = stored_events(people)[-1]
    assert isinstance(event, User.Unfollowed)
    assert (event.follower, event.followee) == ("Alice", "Carol")
    assert not people.get_user("alice").follows("carol")


def test_unfollow_a_user_not_followed(people: ChirpApplication) -> None:
    message = assert_rejected(people, NotFollowing, lambda: people.unfollow("alice", "bob"))
    assert "do not follow @bob" in message


def test_unfollow_an_unknown_user(people: ChirpApplication) -> None:
    assert_rejected(people, NotFollowing, lambda: people.unfollow("alice", "dave"))


def test_unknown_user_cannot_unfollow(people: ChirpApplication) -> None:
    assert_rejected(people, UserNotFound, lambda: people.unfollow("dave", "alice"))


# -- posts -----------------------------------------------------------------------


def test_post_stores_a_posted_event(people: ChirpApplication) -> None:
    post_id = people.post("alice", "hello")
    event = stored_events(people)[-1]
    assert isinstance(event, Tweet.Posted)
    assert (event.originator_id, event.author, event.text) == (post_id, "Alice", "hello")
    tweet = people.get_post(post_id)
    assert (tweet.author, tweet.text, tweet.is_deleted) == ("Alice", "hello", False)


def test_post_by_unknown_author(people: ChirpApplication) -> None:
    message = assert_rejected(people, UserNotFound, lambda: people.post("dave", "hi"))
    assert message == "there is no user @dave"


def test_post_with_invalid_text(people: ChirpApplication) -> None:
    assert_rejected(people, InvalidTweetText, lambda: people.post("alice", "   "))
    assert_rejected(people, InvalidTweetText, lambda: people.post("alice", "a" * 281))


def test_posted_at_is_respected(people: ChirpApplication) -> None:
    moment = datetime(2023, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    post_id = people.post("alice", "from the past", posted_at=moment)
    assert people.get_post(post_id).posted_at == moment
    event = stored_events(people)[-1]
    assert isinstance(event, Tweet.Posted)
    assert event.posted_at == moment


def test_posted_at_in_another_zone_is_stored_in_utc(people: ChirpApplication) -> None:
    tokyo = timezone(timedelta(hours=9))
    post_id = people.post("alice", "hi", posted_at=datetime(2024, 1, 1, 9, 0, tzinfo=tokyo))
    assert people.get_post(post_id).posted_at == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert people.get_post(post_id).posted_at.utcoffset() == timedelta(0)


def test_mentions_resolve_only_to_registered_users_in_canonical_case(
    people: ChirpApplication,
) -> None:
    text = "hi @alice @BOB @carol @dave @way_too_long_for_a_name"
    post_id = people.post("bob", text)
    tweet = people.get_post(post_id)
    mentions = [e for e in tweet.entities if e.kind == "mention"]
    assert mentions == [
        TextEntity("mention", "Alice", 3, 9),
        TextEntity("mention", "bob", 10, 14),
        TextEntity("mention", "Carol", 15, 21),
    ]
    assert [text[e.start : e.end] for e in mentions] == ["@alice", "@BOB", "@carol"]
    assert tweet.mentions == ["Alice", "bob", "Carol"]


def test_mention_of_a_user_registered_later_stays_unresolved(people: ChirpApplication) -> None:
    post_id = people.post("alice", "waiting for @dave")
    people.register("Dave")
    assert people.get_post(post_id).mentions == []
    later = people.post("alice", "welcome @dave")
    assert people.get_post(later).mentions == ["Dave"]


def test_post_author_is_stored_in_canonical_case(people: ChirpApplication) -> None:
    post_id = people.post("aLiCe", "hi")
    assert people.get_post(post_id).author == "Alice"


# -- resubmitted forms (an idempotency key) --------------------------------------


@pytest.fixture(params=["eventsourcing.popo", "eventsourcing.sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChirpApplication]:
    """People on an in-memory store and on SQLite: each store must refuse the
    second creation of an aggregate id, which is what makes a key land once."""
    env = {"PERSISTENCE_MODULE": request.param}
    if request.param == "eventsourcing.sqlite":
        env["SQLITE_DBNAME"] = str(tmp_path / "events.sqlite")
    application = ChirpApplication(env=env)
    application.register("Alice")
    application.register("bob")
    yield application
    application.close()


def test_a_post_sent_twice_with_one_key_is_stored_once(store: ChirpApplication) -> None:
    key = uuid4()
    first = store.post("alice", "only once", key=key)
    before = store.recorder.max_notification_id()
    again = store.post("ALICE", "only once", key=key)
    assert again == first
    assert store.recorder.max_notification_id() == before
    assert [e.originator_id for e in stored_events(store) if isinstance(e, Tweet.Posted)] == [first]


def test_the_post_id_comes_from_the_author_and_the_key(store: ChirpApplication) -> None:
    key = uuid4()
    post_id = store.post("alice", "hi", key=key)
    assert post_id == post_id_for_key("ALICE", key)
    assert post_id != post_id_for_key("bob", key)
    assert post_id != post_id_for_key("alice", uuid4())


def test_one_key_by_two_authors_or_no_key_are_separate_posts(store: ChirpApplication) -> None:
    key = uuid4()
    ids = {
        store.post("alice", "same text", key=key),
        store.post("bob", "same text", key=key),
        store.post("alice", "same text"),
        store.post("alice", "same text"),
    }
    assert len(ids) == 4


def test_a_key_sent_again_with_another_text_is_refused(store: ChirpApplication) -> None:
    key = uuid4()
    first = store.post("alice", "the first text", key=key)
    message = assert_rejected(
        store, PostKeyReused, lambda: store.post("alice", "an edited text", key=key)
    )
    assert "already sent" in message
    assert store.get_post(first).text == "the first text"


def test_a_resubmit_after_the_post_was_deleted_stays_deleted(store: ChirpApplication) -> None:
    key = uuid4()
    first = store.post("alice", "gone", key=key)
    store.delete_post(first, by="alice")
    before = store.recorder.max_notification_id()
    assert store.post("alice", "gone", key=key) == first
    assert store.recorder.max_notification_id() == before
    assert store.get_post(first).is_deleted


def test_a_resubmit_checks_the_text_first(store: ChirpApplication) -> None:
    assert_rejected(store, InvalidTweetText, lambda: store.post("alice", " ", key=uuid4()))


# -- deletion --------------------------------------------------------------------


def test_delete_post_stores_a_deleted_event(people: ChirpApplication) -> None:
    post_id = people.post("alice", "oops")
    people.delete_post(post_id, by="ALICE")
    event = stored_events(people)[-1]
    assert isinstance(event, Tweet.Deleted)
    assert (event.originator_id, event.author) == (post_id, "Alice")
    assert people.get_post(post_id).is_deleted is True


def test_delete_unknown_post(people: ChirpApplication) -> None:
    missing = uuid4()
    message = assert_rejected(
        people, TweetNotFound, lambda: people.delete_post(missing, by="alice")
    )
    assert str(missing) in message


def test_a_user_id_is_not_a_post_id(people: ChirpApplication) -> None:
    user_id: UUID = User.create_id("alice")
    assert_rejected(people, TweetNotFound, lambda: people.get_post(user_id))
    assert_rejected(people, TweetNotFound, lambda: people.delete_post(user_id, by="alice"))


def test_delete_by_another_user(people: ChirpApplication) -> None:
    post_id = people.post("alice", "mine")
    message = assert_rejected(people, NotTheAuthor, lambda: people.delete_post(post_id, by="bob"))
    assert "only its author" in message
    assert people.get_post(post_id).is_deleted is False


def test_delete_twice(people: ChirpApplication) -> None:
    post_id = people.post("alice", "mine")
    people.delete_post(post_id, by="alice")
    assert_rejected(people, TweetAlreadyDeleted, lambda: people.delete_post(post_id, by="alice"))


def test_every_command_and_rejection_leaves_the_expected_log(people: ChirpApplication) -> None:
    post_id = people.post("alice", "one", datetime(2024, 1, 1, tzinfo=UTC))
    people.follow("bob", "alice")
    for command in (
        lambda: people.register("BOB"),
        lambda: people.follow("bob", "alice"),
        lambda: people.delete_post(post_id, by="carol"),
    ):
        with pytest.raises(DomainError):
            command()
    people.delete_post(post_id, by="alice")
    assert [type(e).__name__ for e in stored_events(people)] == [
        "Registered",
        "Registered",
        "Registered",
        "Posted",
        "Followed",
        "Deleted",
    ]

"""The User aggregate on its own: username and profile rules, follows, and the
errors each rejected operation raises (leaving no pending event behind)."""

from __future__ import annotations

import pytest

from domain.errors import (
    AlreadyFollowing,
    CannotFollowSelf,
    DomainError,
    InvalidBio,
    InvalidDisplayName,
    InvalidUsername,
    NotFollowing,
)
from domain.user import MAX_BIO_LENGTH, MAX_DISPLAY_NAME_LENGTH, User, username_key
from tests.events import new_events


def registered(username: str = "alice", display_name: str = "") -> User:
    """A registered user whose Registered event has already been collected."""
    user = User.register(username, display_name)
    assert len(user.collect_events()) == 1
    return user


# -- usernames -----------------------------------------------------------------


@pytest.mark.parametrize("username", ["a", "A", "_", "9", "alice_99", "Al1ce", "x" * 15, "___"])
def test_valid_usernames_register(username: str) -> None:
    user = User.register(username)
    assert user.username == username
    (event,) = new_events(user, User.Registered)
    assert event.username == username


@pytest.mark.parametrize(
    "username",
    ["al ice", "alice!", "al-ice", "al.ice", "@alice", "élise", "ali\u00a0ce", "名前", "alice\n"],
)
def test_username_with_other_characters_is_rejected(username: str) -> None:
    with pytest.raises(InvalidUsername) as caught:
        User.register(username)
    assert str(caught.value) == f"username {username!r} may only contain letters, digits and _"


def test_username_error_message_names_the_username_and_the_rule() -> None:
    with pytest.raises(InvalidUsername, match=r"username 'al ice' may only contain letters"):
        User.register("al ice")


def test_username_of_16_characters_is_too_long() -> None:
    with pytest.raises(InvalidUsername) as caught:
        User.register("a" * 16)
    message = str(caught.value)
    assert "16 characters" in message
    assert "limit is 15" in message


def test_too_long_username_is_reported_before_bad_characters() -> None:
    with pytest.raises(InvalidUsername, match="limit is 15"):
        User.register("not a valid name at all")


def test_empty_username_is_rejected() -> None:
    with pytest.raises(InvalidUsername, match="username is needed"):
        User.register("")


def test_invalid_username_is_a_domain_error() -> None:
    with pytest.raises(DomainError):
        User.register("no way")


# -- identity ------------------------------------------------------------------


def test_user_id_ignores_case() -> None:
    assert User.create_id("Alice") == User.create_id("alice") == User.create_id("ALICE")


def test_user_id_differs_between_usernames() -> None:
    assert User.create_id("alice") != User.create_id("alice_")
    assert User.create_id("alice") != User.create_id("bob")


def test_registered_user_gets_the_id_of_its_username_in_any_case() -> None:
    user = User.register("Alice")
    assert user.id == User.create_id("aLiCe")
    assert user.username == "Alice"  # the name keeps the case it was registered in


def test_username_key_is_lower_case() -> None:
    assert username_key("AlIcE_9") == "alice_9"


# -- display names ---------------------------------------------------------------


def test_display_name_defaults_to_the_username() -> None:
    user = User.register("Alice")
    assert user.display_name == "Alice"
    assert new_events(user, User.Registered)[0].display_name == "Alice"


def test_blank_display_name_defaults_to_the_username() -> None:
    assert User.register("alice", "   ").display_name == "alice"


def test_display_name_is_stripped() -> None:
    assert User.register("alice", "  Alice Liddell \t").display_name == "Alice Liddell"


def test_new_user_has_empty_bio_and_follows_nobody() -> None:
    user = User.register("alice", "Alice")
    assert user.bio == ""
    assert user.following == set()


def test_display_name_of_the_maximum_length_is_accepted() -> None:
    name = "n" * MAX_DISPLAY_NAME_LENGTH
    assert MAX_DISPLAY_NAME_LENGTH == 50
    assert User.register("alice", name).display_name == name


def test_display_name_one_over_the_maximum_is_rejected() -> None:
    with pytest.raises(InvalidDisplayName, match="at most 50 characters"):
        User.register("alice", "n" * (MAX_DISPLAY_NAME_LENGTH + 1))


@pytest.mark.parametrize(
    "name", ["Alice\nLiddell", "Alice\rL", "Alice\tL", "Alice\u2028L", "Alice\u2029L"]
)
def test_display_name_must_be_a_single_line(name: str) -> None:
    with pytest.raises(InvalidDisplayName, match="single line"):
        User.register("alice", name)


def test_display_name_may_hold_any_printable_text() -> None:
    assert User.register("alice", "Alice 🐦 アリス").display_name == "Alice 🐦 アリス"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("dn\u202e285809", "direction controls such as U+202E"),
        ("Ali\u200bce Liddell", "invisible characters such as U+200B"),
        ("\u3164", "invisible characters such as U+3164"),
        ("Alice\x00", "control characters such as U+0000"),
    ],
)
def test_display_name_refuses_direction_controls_and_invisible_characters(
    name: str, reason: str
) -> None:
    with pytest.raises(InvalidDisplayName, match=reason.replace("+", r"\+")):
        User.register("alice", name)
    user = registered("alice", "Alice")
    with pytest.raises(InvalidDisplayName, match=reason.replace("+", r"\+")):
        user.update_profile(name, "")
    assert user.collect_events() == []


def test_display_name_keeps_emoji_sequences() -> None:
    name = "Alice \U0001f469\u200d\U0001f4bb \u2764\ufe0f"
    assert User.register("alice", name).display_name == name


def test_bio_refuses_control_characters_without_an_event() -> None:
    user = registered("alice", "Alice")
    with pytest.raises(InvalidBio, match="control characters such as U\\+001B"):
        user.update_profile("Alice", "escape \x1b[31m")
    assert user.collect_events() == []


def test_a_name_stored_before_the_rules_still_replays() -> None:
    """Rules run on commands, never on stored events: an old log still loads."""
    old = User(username="mallory", display_name="\u202eAlice")
    copy: User | None = None
    for domain_event in old.collect_events():
        copy = domain_event.mutate(copy)
    assert copy is not None and copy.display_name == "\u202eAlice"


# -- profile updates ---------------------------------------------------------------


def test_profile_update_records_an_event_and_changes_the_profile() -> None:
    user = registered("alice")
    user.update_profile("Alice L.", "  Down the rabbit hole  ")
    assert (user.display_name, user.bio) == ("Alice L.", "Down the rabbit hole")
    (event,) = new_events(user, User.ProfileUpdated)
    assert (event.username, event.display_name, event.bio) == (
        "alice",
        "Alice L.",
        "Down the rabbit hole",
    )


def test_unchanged_profile_records_no_event() -> None:
    user = registered("alice", "Alice")
    user.update_profile("Alice", "")
    assert user.collect_events() == []


def test_profile_equal_after_stripping_records_no_event() -> None:
    user = registered("alice", "Alice")
    user.update_profile("  Alice  ", "   ")
    assert user.collect_events() == []
    assert (user.display_name, user.bio) == ("Alice", "")


def test_blank_display_name_in_update_falls_back_to_the_username() -> None:
    user = registered("alice", "Alice L.")
    user.update_profile("", "bio")
    assert user.display_name == "alice"
    assert new_events(user, User.ProfileUpdated)[0].display_name == "alice"


def test_changing_only_the_bio_records_an_event() -> None:
    user = registered("alice", "Alice")
    user.update_profile("Alice", "new bio")
    assert [e.bio for e in new_events(user, User.ProfileUpdated)] == ["new bio"]


def test_bio_of_the_maximum_length_is_accepted() -> None:
    user = registered()
    assert MAX_BIO_LENGTH == 160
    user.update_profile("", "b" * MAX_BIO_LENGTH)
    assert user.bio == "b" * 160


def test_too_long_bio_is_rejected_without_an_event() -> None:
    user = registered("alice", "Alice")
    with pytest.raises(DomainError, match="bio may have at most 160 characters"):
        user.update_profile("Alice L.", "b" * (MAX_BIO_LENGTH + 1))
    assert user.collect_events() == []
    assert (user.display_name, user.bio) == ("Alice", "")


def test_too_long_display_name_in_update_is_rejected_without_an_event() -> None:
    user = registered("alice", "Alice")
    with pytest.raises(InvalidDisplayName, match="at most 50 characters"):
        user.update_profile("n" * 51, "bio")
    assert user.collect_events() == []
    assert (user.display_name, user.bio) == ("Alice", "")


def test_multi_line_display_name_in_update_is_rejected_without_an_event() -> None:
    user = registered("alice", "Alice")
    with pytest.raises(InvalidDisplayName, match="single line"):
        user.update_profile("Alice\nL.", "")
    assert user.collect_events() == []
    assert user.display_name == "Alice"


# -- follows ---------------------------------------------------------------------


def test_follow_records_follower_and_followee() -> None:
    user = registered("alice")
    user.follow("Bob")
    assert user.follows("bob")
    assert user.follows("BOB")
    (event,) = new_events(user, User.Followed)
    assert (event.follower, event.followee) == ("alice", "Bob")


def test_following_several_users() -> None:
    user = registered("alice")
    user.follow("bob")
    user.follow("carol")
    assert user.following == {"bob", "carol"}
    assert len(user.collect_events()) == 2
    assert not user.follows("dave")


def test_cannot_follow_yourself() -> None:
    user = registered("alice")
    with pytest.raises(CannotFollowSelf, match="cannot follow yourself"):
        user.follow("alice")
    assert user.collect_events() == []
    assert user.following == set()


def test_cannot_follow_yourself_in_another_case() -> None:
    user = registered("Alice")
    with pytest.raises(CannotFollowSelf):
        user.follow("aLICE")
    assert user.collect_events() == []


def test_following_twice_is_rejected() -> None:
    user = registered("alice")
    user.follow("bob")
    user.collect_events()
    with pytest.raises(AlreadyFollowing) as caught:
        user.follow("bob")
    assert str(caught.value) == "you already follow @bob"
    assert user.collect_events() == []


def test_following_twice_in_another_case_is_rejected() -> None:
    user = registered("alice")
    user.follow("Bob")
    user.collect_events()
    with pytest.raises(AlreadyFollowing, match="already follow @BOB"):
        user.follow("BOB")
    assert user.collect_events() == []
    assert user.following == {"bob"}


def test_unfollow_records_an_event() -> None:
    user = registered("alice")
    user.follow("Bob")
    user.collect_events()
    user.unfollow("bob")
    assert not user.follows("Bob")
    (event,) = new_events(user, User.Unfollowed)
    assert (event.follower, event.followee) == ("alice", "bob")


def test_unfollow_ignores_case() -> None:
    user = registered("alice")
    user.follow("bob")
    user.unfollow("BoB")
    assert user.following == set()


def test_unfollowing_a_stranger_is_rejected() -> None:
    user = registered("alice")
    user.follow("bob")
    user.collect_events()
    with pytest.raises(NotFollowing) as caught:
        user.unfollow("carol")
    assert str(caught.value) == "you do not follow @carol"
    assert user.collect_events() == []
    assert user.following == {"bob"}


def test_unfollowing_twice_is_rejected() -> None:
    user = registered("alice")
    user.follow("bob")
    user.unfollow("bob")
    user.collect_events()
    with pytest.raises(NotFollowing):
        user.unfollow("bob")
    assert user.collect_events() == []


def test_unfollowing_yourself_is_rejected_as_not_following() -> None:
    user = registered("alice")
    with pytest.raises(NotFollowing, match="do not follow @alice"):
        user.unfollow("alice")
    assert user.collect_events() == []


def test_follow_again_after_unfollow() -> None:
    user = registered("alice")
    user.follow("bob")
    user.unfollow("bob")
    user.follow("bob")
    assert user.follows("bob")
    assert [type(e) for e in user.collect_events()] == [
        User.Followed,
        User.Unfollowed,
        User.Followed,
    ]


def test_state_is_rebuilt_from_the_events() -> None:
    user = User.register("Alice", "Alice")
    user.update_profile("Alice L.", "hello")
    user.follow("bob")
    user.follow("carol")
    user.unfollow("bob")
    events = user.collect_events()
    copy: User | None = None
    for domain_event in events:
        copy = domain_event.mutate(copy)
    assert copy is not None
    assert (copy.id, copy.version) == (user.id, user.version) == (user.id, 5)
    assert (copy.username, copy.display_name, copy.bio) == ("Alice", "Alice L.", "hello")
    assert copy.following == {"carol"}

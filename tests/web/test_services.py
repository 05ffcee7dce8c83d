"""web.services' rules for repeated actions: the end state the person asked for
is a success; the domain itself keeps refusing the repeat (tests/unit/test_commands.py)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

import pytest
from django.contrib.auth.models import User

from application.service import Chirp
from domain.errors import CannotFollowSelf, NotTheAuthor, TweetNotFound, UserNotFound
from web import services


def test_follow_when_already_following_changes_nothing(
    chirp: Chirp, person: Callable[..., User]
) -> None:
    person("alice")
    person("bob")
    services.follow(chirp, "alice", "bob")
    before = chirp.commands.recorder.max_notification_id()
    services.follow(chirp, "alice", "BOB")
    assert chirp.commands.recorder.max_notification_id() == before
    assert chirp.commands.get_user("alice").follows("bob")


def test_follow_keeps_refusing_what_cannot_be(chirp: Chirp, person: Callable[..., User]) -> None:
    person("alice")
    with pytest.raises(CannotFollowSelf):
        services.follow(chirp, "alice", "alice")
    with pytest.raises(UserNotFound):
        services.follow(chirp, "alice", "nobody")


def test_unfollow_when_not_following_changes_nothing(
    chirp: Chirp, person: Callable[..., User]
) -> None:
    person("alice")
    person("bob")
    before = chirp.commands.recorder.max_notification_id()
    services.unfollow(chirp, "alice", "bob")
    assert chirp.commands.recorder.max_notification_id() == before
    assert not chirp.commands.get_user("alice").follows("bob")


def test_unfollow_of_an_unknown_user_is_not_found(
    chirp: Chirp, person: Callable[..., User]
) -> None:
    person("alice")
    with pytest.raises(UserNotFound):
        services.unfollow(chirp, "alice", "nobody")


def test_delete_of_a_deleted_post_is_done_for_its_author_only(
    chirp: Chirp, person: Callable[..., User]
) -> None:
    person("alice")
    person("bob")
    post_id = chirp.post("alice", "once")
    services.delete_post(chirp, post_id, by="alice")
    before = chirp.commands.recorder.max_notification_id()
    services.delete_post(chirp, post_id, by="Alice")
    assert chirp.commands.recorder.max_notification_id() == before
    with pytest.raises(NotTheAuthor):
        services.delete_post(chirp, post_id, by="bob")
    with pytest.raises(TweetNotFound):
        services.delete_post(chirp, uuid4(), by="alice")

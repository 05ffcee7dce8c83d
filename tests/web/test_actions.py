"""Double actions and small HTTP faults: resubmits, stale tabs, HEAD, refused posts,
delete confirmation and the compose counter's guards."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from application.service import Chirp


def html(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize(
    "path",
    ["/", "/@alice", "/@alice/followers", "/@alice/following", "/tags/chirp", "/login", "/signup"],
)
def test_head_is_answered_wherever_get_is(
    client: Client, person: Callable[..., User], chirp: Chirp, path: str
) -> None:
    person("alice")
    chirp.post("alice", "hello #chirp")
    get = client.get(path)
    head = client.head(path)
    assert get.status_code == 200
    assert head.status_code == 200
    assert head.content == b""


def test_head_of_a_post_page_and_notifications(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    post_id = chirp.post("alice", "hello")
    assert client.head(f"/@alice/{post_id}").status_code == 200
    assert client.head("/notifications").status_code == 200
    assert client.head("/compose/count?text=hi").status_code == 200


def follows(chirp: Chirp, follower: str, followee: str) -> bool:
    return chirp.commands.get_user(follower).follows(followee)


def test_follow_in_a_stale_tab_succeeds_and_stores_one_follow(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    client = logged_in("alice")
    person("bob")
    assert client.post("/@bob/follow").status_code == 302
    before = chirp.commands.recorder.max_notification_id()
    response = client.post("/@bob/follow")  # the same button, in a tab opened before
    assert response.status_code == 302 and response["Location"] == "/@bob"
    assert follows(chirp, "alice", "bob")
    assert chirp.commands.recorder.max_notification_id() == before


def test_unfollow_twice_succeeds_and_stores_one_unfollow(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    client = logged_in("alice")
    person("bob")
    chirp.follow("alice", "bob")
    assert client.post("/@bob/unfollow").status_code == 302
    before = chirp.commands.recorder.max_notification_id()
    response = client.post("/@BOB/unfollow")
    assert response.status_code == 302
    assert not follows(chirp, "alice", "bob")
    assert chirp.commands.recorder.max_notification_id() == before


def test_follow_and_unfollow_of_an_unknown_user_are_404(
    logged_in: Callable[[str], Client],
) -> None:
    client = logged_in("alice")
    assert client.post("/@nobody/follow").status_code == 404
    assert client.post("/@nobody/unfollow").status_code == 404


def test_deleting_an_already_deleted_post_is_done_for_its_author(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    post_id = chirp.post("alice", "delete me twice")
    assert client.post(f"/@alice/{post_id}/delete").status_code == 302
    before = chirp.commands.recorder.max_notification_id()
    response = client.post(f"/@alice/{post_id}/delete")  # a stale tab
    assert response.status_code == 302 and response["Location"] == "/@alice"
    assert chirp.commands.recorder.max_notification_id() == before
    assert chirp.commands.get_post(post_id).is_deleted

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

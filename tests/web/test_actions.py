"""Double actions and small HTTP faults: resubmits, stale tabs, HEAD, refused posts,
delete confirmation and the compose counter's guards."""

from __future__ import annotations

import re
from collections.abc import Callable
from uuid import UUID, uuid4

import pytest
from django.contrib.auth.models import User
from django.test import Client

from application.service import Chirp
from web import views
from web.forms import MAX_POST_RAW_LENGTH


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


def form_token(page: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match is not None, "the compose form has no token"
    return match.group(1)


def test_each_compose_form_gets_a_fresh_token(logged_in: Callable[[str], Client]) -> None:
    client = logged_in("alice")
    first, second = (form_token(html(client.get("/"))) for _ in range(2))
    assert UUID(first) != UUID(second)


def test_a_post_form_sent_twice_stores_one_post(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    token = form_token(html(client.get("/")))
    before = chirp.commands.recorder.max_notification_id() or 0
    for _ in range(2):  # a double click, or a resend after a lost answer
        response = client.post("/post", {"text": "only once", "token": token})
        assert response.status_code == 302 and response["Location"] == "/"
    assert chirp.commands.recorder.max_notification_id() == before + 1
    assert [item.text for item in chirp.queries.profile_feed("alice").items] == ["only once"]
    # A new form (a new token) is a new post, even with the same text.
    again = form_token(html(client.get("/")))
    client.post("/post", {"text": "only once", "token": again})
    assert len(chirp.queries.profile_feed("alice").items) == 2


def test_a_refused_post_redirects_home_with_the_draft_and_the_message(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    token = form_token(html(client.get("/")))
    before = chirp.commands.recorder.max_notification_id()
    draft = "<b>far</b> too long " + "x" * 300
    response = client.post("/post", {"text": draft, "token": token})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.head("/").status_code == 200  # a HEAD does not use the draft up
    page = html(client.get("/"))
    assert "at most 280 characters" in page
    assert "&lt;b&gt;far&lt;/b&gt; too long " + "x" * 300 + "</textarea>" in page
    assert form_token(page) != token  # a fresh form: pressing Post again is a new try
    # Shown once: a refresh of the home page is a clean compose box.
    again = html(client.get("/"))
    assert "at most 280 characters" not in again and "far" not in again
    assert chirp.commands.recorder.max_notification_id() == before


def test_a_form_token_that_is_not_a_uuid_is_refused_with_a_message(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    before = chirp.commands.recorder.max_notification_id()
    response = client.post("/post", {"text": "hello", "token": "not-a-uuid"})
    assert response.status_code == 302
    page = html(client.get("/"))
    assert "press Post again" in page and "hello</textarea>" in page
    assert chirp.commands.recorder.max_notification_id() == before


def test_a_form_sent_again_with_an_edited_text_keeps_the_new_text(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    token = form_token(html(client.get("/")))
    client.post("/post", {"text": "first words", "token": token})
    # The browser's back button brings the old form back; the person edits it.
    client.post("/post", {"text": "second thoughts", "token": token})
    page = html(client.get("/"))
    assert "already sent with another text" in page
    assert "second thoughts</textarea>" in page
    client.post("/post", {"text": "second thoughts", "token": form_token(page)})
    texts = [item.text for item in chirp.queries.profile_feed("alice").items]
    assert texts == ["second thoughts", "first words"]


def test_delete_asks_for_confirmation_on_a_page_of_its_own(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    post_id = chirp.post("alice", "think twice")
    delete_url = f"/@alice/{post_id}/delete"
    post_page = html(client.get(f"/@alice/{post_id}"))
    # The post page links to the confirmation; no form there deletes at once.
    assert f'href="{delete_url}"' in post_page
    assert f'action="{delete_url}"' not in post_page
    response = client.get(delete_url)
    page = html(response)
    assert response.status_code == 200
    assert "think twice" in page and "cannot be undone" in page
    assert re.search(rf'<form method="post" action="{delete_url}">', page)
    assert f'href="/@alice/{post_id}"' in page  # keep it: back to the post
    assert not chirp.commands.get_post(post_id).is_deleted  # asking deletes nothing
    assert client.post(delete_url).status_code == 302
    assert chirp.commands.get_post(post_id).is_deleted


def test_only_the_author_is_asked_to_confirm_a_delete(
    client: Client, logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    person("bob")
    post_id = chirp.post("bob", "bob's")
    assert client.get(f"/@bob/{post_id}/delete")["Location"].startswith("/login")
    logged_in("alice")
    assert client.get(f"/@bob/{post_id}/delete").status_code == 403
    assert client.get(f"/@alice/{post_id}/delete").status_code == 404  # not alice's post
    assert client.get(f"/@bob/{uuid4()}/delete").status_code == 404
    assert not chirp.commands.get_post(post_id).is_deleted


def test_compose_count_needs_a_log_in_and_answers_json(client: Client, chirp: Chirp) -> None:
    response = client.get("/compose/count", {"text": "hello"})
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "log in" in response.json()["error"]


def test_compose_count_refuses_a_draft_far_past_the_limit_before_counting(
    logged_in: Callable[[str], Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = logged_in("alice")
    assert client.get("/compose/count", {"text": "x" * MAX_POST_RAW_LENGTH}).status_code == 200

    def must_not_count(text: str) -> int:
        raise AssertionError("a draft past the form's limit was counted")

    monkeypatch.setattr(views, "weighted_length", must_not_count)
    response = client.get("/compose/count", {"text": "x" * 20_000})
    assert response.status_code == 400
    assert response.json()["error"] == (
        f"a draft may have at most {MAX_POST_RAW_LENGTH} characters; this one has 20000"
    )

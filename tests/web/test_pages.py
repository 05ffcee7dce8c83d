"""Every page through Django's test client: content, empty states, 4xx paths."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from django.contrib.auth.models import User
from django.test import Client

from application.feeds import FeedUnavailableError
from application.service import Chirp
from domain.text import weighted_length
from tests.web.conftest import PASSWORD


def html(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined,no-any-return]


def test_anonymous_home_is_a_welcome_page(client: Client, chirp: Chirp) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "Create an account" in html(response)


def test_home_shows_the_timeline_trending_and_who_to_follow(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    client = logged_in("alice")
    person("bob", "Bob B.")
    person("carol")
    chirp.follow("alice", "bob")
    chirp.follow("carol", "bob")
    chirp.post("bob", "Hello #Django friends")
    response = client.get("/")
    page = html(response)
    assert response.status_code == 200
    assert "Hello" in page and "Bob B." in page
    assert 'href="/tags/django"' in page  # linked hashtag and trending entry
    assert "1 post" in page
    assert "@carol" in page  # who to follow: carol, not bob (already followed)
    assert page.count("@bob") >= 1


def test_empty_timeline_says_what_to_do(logged_in: Callable[[str], Client]) -> None:
    page = html(logged_in("alice").get("/"))
    assert "Your timeline is empty" in page


def test_posting_shows_the_post_and_stores_one_event(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    before = chirp.commands.recorder.max_notification_id()
    response = client.post("/post", {"text": "first post with @nobody and #tag"})
    assert response.status_code == 302
    assert chirp.commands.recorder.max_notification_id() == (before or 0) + 1
    assert "first post with" in html(client.get("/"))


def test_bad_posts_get_a_message_and_store_nothing(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    before = chirp.commands.recorder.max_notification_id()
    cases = {
        "": "required",
        "   \n ": "cannot be empty",
        "x" * 281: "at most 280 characters",
        "x" * 2001: "at most 2000 characters",
    }
    for text, message in cases.items():
        response = client.post("/post", {"text": text})
        assert response.status_code == 302 and response["Location"] == "/", text[:10]
        assert message in html(client.get("/"))
    assert client.post("/post", {}).status_code == 302  # a tampered form without the field
    assert "required" in html(client.get("/"))
    assert chirp.commands.recorder.max_notification_id() == before


def test_logged_out_posting_redirects_to_log_in(client: Client, chirp: Chirp) -> None:
    response = client.post("/post", {"text": "hi"})
    assert response.status_code == 302
    assert response["Location"].startswith("/login")


def test_csrf_is_enforced(person: Callable[..., User], chirp: Chirp) -> None:
    person("alice")
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="alice", password="a-long-test-password-42")
    assert client.post("/post", {"text": "no token"}).status_code == 403
    assert chirp.queries.profile_feed("alice").items == []


def test_compose_count_agrees_with_the_domain(logged_in: Callable[[str], Client]) -> None:
    client = logged_in("alice")
    for text in ["hello", "日本語のテキスト", "emoji 👩‍👩‍👧 ok", "see https://example.com/x"]:
        data = client.get("/compose/count", {"text": text}).json()
        assert data["weighted_length"] == weighted_length(text)
        assert data["remaining"] == 280 - weighted_length(text)


def test_profile_page_with_counts_follow_and_unfollow(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    client = logged_in("alice")
    person("bob")
    chirp.post("bob", "bob's post")
    page = html(client.get("/@bob"))
    assert "bob&#x27;s post" in page and ">Follow<" in page
    assert client.post("/@bob/follow").status_code == 302
    page = html(client.get("/@BOB"))
    assert ">Unfollow<" in page and "<b>1</b> follower" in page
    assert "bob&#x27;s post" in html(client.get("/"))
    assert client.post("/@bob/unfollow").status_code == 302
    assert "bob&#x27;s post" not in html(client.get("/"))


def test_follow_errors_are_messages(
    logged_in: Callable[[str], Client], person: Callable[..., User]
) -> None:
    client = logged_in("alice")
    person("bob")
    response = client.post("/@alice/follow")
    assert response.status_code == 400 and "cannot follow yourself" in html(response)
    assert client.post("/@nobody/follow").status_code == 404
    assert client.post("/@nobody/unfollow").status_code == 404


def test_followers_and_following_lists(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    person("alice", "Alice A.")
    person("bob", "Bob B.")
    chirp.follow("alice", "bob")
    assert "Alice A." in html(client.get("/@bob/followers"))
    main = html(client.get("/@alice/following")).split("</h1>", 1)[1].split("<aside", 1)[0]
    assert "Bob B." in main and "Alice A." not in main
    assert "No followers yet" in html(client.get("/@alice/followers"))
    assert client.get("/@alice/following?page=x").status_code == 400
    assert client.get("/@alice/following?page=1.5").status_code == 400
    for first in ("1", "0", "-3", "-" + "9" * 5000):  # below 1: the first page
        assert "Bob B." in html(client.get(f"/@alice/following?page={first}"))


@pytest.mark.parametrize("which", ["followers", "following"])
@pytest.mark.parametrize("page", ["2", "184467440737095517", "99999999999999999999999", "9" * 5000])
def test_a_page_past_the_end_of_a_user_list_is_404_logged_in_or_out(
    client: Client, person: Callable[..., User], chirp: Chirp, which: str, page: str
) -> None:
    person("alice")
    person("bob")
    chirp.follow("alice", "bob")
    chirp.follow("bob", "alice")
    assert client.get(f"/@alice/{which}").status_code == 200
    assert client.get(f"/@alice/{which}?page={page}").status_code == 404
    assert client.login(username="bob", password=PASSWORD)
    assert client.get(f"/@alice/{which}?page={page}").status_code == 404


def test_unknown_user_tag_and_post_are_404(client: Client, person: Callable[..., User]) -> None:
    person("alice")
    assert client.get("/@nobody").status_code == 404
    assert client.get("/@not-a-name").status_code == 404
    assert client.get("/tags/never").status_code == 404
    assert client.get("/tags/12345").status_code == 404  # not a hashtag at all
    assert client.get(f"/@alice/{uuid4()}").status_code == 404
    assert client.get("/no/such/page").status_code == 404


def test_tag_page_is_case_insensitive(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    person("alice")
    chirp.post("alice", "about #Django")
    chirp.post("alice", "more #django")
    page = html(client.get("/tags/DJANGO"))
    assert "about" in page and "more" in page


def test_notifications_show_mentions_and_new_followers(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    client = logged_in("alice")
    person("bob", "Bob B.")
    assert "Nothing yet" in html(client.get("/notifications"))
    chirp.follow("bob", "alice")
    chirp.post("bob", "hey @alice look")
    page = html(client.get("/notifications"))
    assert "followed you" in page and "mentioned you" in page and "hey" in page


def test_post_page_and_delete(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    client = logged_in("alice")
    post_id = chirp.post("alice", "to be deleted #gone")
    page = html(client.get(f"/@alice/{post_id}"))
    assert "to be deleted" in page and "Delete this post" in page
    assert client.get(f"/@bob/{post_id}").status_code == 404  # wrong author in the path
    assert client.post(f"/@alice/{post_id}/delete").status_code == 302
    assert client.get(f"/@alice/{post_id}").status_code == 404
    assert client.get("/tags/gone").status_code == 404


def test_deleting_someone_elses_post_is_403(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    person("bob")
    post_id = chirp.post("bob", "mine")
    client = logged_in("alice")
    page = html(client.get(f"/@bob/{post_id}"))
    assert "Delete this post" not in page
    assert client.post(f"/@bob/{post_id}/delete").status_code == 403
    assert chirp.queries.post(post_id).text == "mine"


def test_older_posts_paging_and_bad_cursor(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(30):
        chirp.post("alice", f"post number {n:02d}", start + timedelta(minutes=n))
    first = html(client.get("/@alice"))
    assert "post number 29" in first and "post number 04" not in first
    cursor = first.split('href="?cursor=')[1].split('"')[0]
    second = html(client.get(f"/@alice?cursor={cursor}"))
    assert "post number 04" in second and "post number 29" not in second
    response = client.get("/@alice?cursor=garbage!!")
    assert response.status_code == 400 and "page link is not valid" in html(response)


def test_settings_update_the_profile(logged_in: Callable[[str], Client], chirp: Chirp) -> None:
    client = logged_in("alice")
    assert client.get("/settings").status_code == 200
    response = client.post("/settings", {"display_name": "Alice Wonder", "bio": "Down the hole"})
    assert response.status_code == 302
    page = html(client.get("/@alice"))
    assert "Alice Wonder" in page and "Down the hole" in page
    response = client.post("/settings", {"display_name": "x" * 51, "bio": ""})
    assert response.status_code == 400


def test_relative_time_with_exact_time_on_hover(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    chirp.post("alice", "timed", datetime(2025, 1, 1, 12, 30, 5, tzinfo=UTC))
    page = html(client.get("/@alice"))
    assert 'datetime="2025-01-01T12:30:05+00:00"' in page
    assert 'title="1 Jan 2025, 12:30:05 UTC"' in page
    assert " ago</time>" in page


def test_what_happened_under_a_minute_ago_says_now(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    client = logged_in("alice")
    person("bob")
    chirp.follow("bob", "alice")
    chirp.post("alice", "fresh")
    for url in ["/@alice", "/notifications"]:  # a post; a new follower
        page = html(client.get(url))
        assert ">now</time>" in page, url
        assert "0\xa0minutes" not in page, url


def test_feeds_unavailable_is_a_503_page(
    logged_in: Callable[[str], Client], chirp: Chirp, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = logged_in("alice")

    def unavailable(*args: object, **kwargs: object) -> object:
        raise FeedUnavailableError("Redis is unavailable")

    monkeypatch.setattr(chirp.provider, "read", unavailable)
    response = client.get("/")
    assert response.status_code == 503
    assert "Your posts are safe" in html(response)

"""Nothing a user wrote is rendered unescaped: posts, names, bios, links."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client

from application.service import Chirp
from tests.legacy_events import store_user_from_an_old_log

PAYLOADS = [
    "<script>alert(1)</script>",
    '"onmouseover="alert(2)',
    "<img src=x onerror=alert(3)>",
]


def test_post_text_is_escaped_everywhere(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    client = logged_in("alice")
    text = " ".join(PAYLOADS) + " #xss @alice"
    post_id = chirp.post("alice", text)
    for path in ["/", "/@alice", "/tags/xss", "/notifications", f"/@alice/{post_id}"]:
        page = client.get(path).content.decode()
        assert "<script>alert(1)" not in page, path
        assert "<img src=x" not in page, path
        assert '"onmouseover="' not in page, path
    page = client.get("/@alice").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;onmouseover=&quot;alert(2)" in page


def test_display_names_and_bios_are_escaped(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    person("mallory", '<b onmouseover="x()">M</b>')
    chirp.update_profile("mallory", '<script>alert("name")</script>', '"onmouseover="alert(1)')
    chirp.post("mallory", "hello")
    person("alice")
    chirp.follow("alice", "mallory")
    for path in ["/@mallory", "/@alice/following", "/"]:
        page = client.get(path).content.decode()
        assert '<script>alert("name")' not in page, path
        assert '"onmouseover="alert' not in page, path
    assert (
        "&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;"
        in client.get("/@mallory").content.decode()
    )


def test_javascript_links_inside_urls_are_not_links(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    person("alice")
    chirp.post("alice", 'javascript:alert(1) see javascript:http://example.com/"><b>x</b>')
    page = client.get("/@alice").content.decode()
    assert 'href="javascript:' not in page
    assert "<b>x</b>" not in page
    # The URL inside is linked, with its quote escaped in the attribute.
    assert 'href="http://example.com/' in page


def test_mentions_and_hashtags_link_with_safe_hrefs(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    person("alice")
    person("bob")
    chirp.post("alice", "hi @BOB about #Django")
    page = client.get("/@alice").content.decode()
    assert '<a class="mention" href="/@bob">@BOB</a>' in page
    assert '<a class="hashtag" href="/tags/django">#Django</a>' in page


# -- names and handles cannot disguise each other ------------------------------


def test_names_are_isolated_and_handles_read_left_to_right_on_every_page(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    client = logged_in("alice")
    person("bob", "\u0639\u0644\u064a")  # a right-to-left name
    chirp.follow("bob", "alice")
    post_id = chirp.post("bob", "hi @alice #isolated")
    pages = ["/", "/@bob", "/@alice/followers", "/notifications", "/tags/isolated"]
    for path in [*pages, f"/@bob/{post_id}"]:
        page = html(client.get(path))
        assert '<bdi class="name">\u0639\u0644\u064a</bdi>' in page, path
        assert '<span class="handle muted" dir="ltr">@bob</span>' in page, path
        assert "\u0639\u0644\u064a</b>" not in page, path  # never outside its <bdi>


def test_names_from_an_old_log_are_shown_without_their_controls(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    store_user_from_an_old_log(chirp, "dn285809", "Evil\u202e")
    store_user_from_an_old_log(chirp, "ghost", "\u200b\u3164")
    chirp.post("dn285809", "hello")
    chirp.post("ghost", "boo")
    page = html(client.get("/@dn285809"))
    assert "\u202e" not in page
    assert '<bdi class="name">Evil</bdi>' in page
    assert "<title>\u2068Evil\u2069 (@dn285809)" in page  # isolated in plain text too
    # A name of nothing visible falls back to the username.
    assert '<bdi class="name">ghost</bdi>' in html(client.get("/@ghost"))


def test_post_text_sets_its_own_direction_and_isolates_its_links(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    person("alice")
    person("bob")
    chirp.post("alice", "\u202e@bob #tag example.com")
    page = html(client.get("/@alice"))
    assert '<p class="text" dir="auto">' in page
    assert '<bdi><a class="mention" href="/@bob">@bob</a></bdi>' in page
    assert '<bdi><a class="hashtag" href="/tags/tag">#tag</a></bdi>' in page
    assert '<bdi><a class="url"' in page


def html(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined,no-any-return]

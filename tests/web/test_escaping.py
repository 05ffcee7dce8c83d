"""Nothing a user wrote is rendered unescaped: posts, names, bios, links."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client

from application.service import Chirp

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

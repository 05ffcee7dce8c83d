"""Accessibility of every page, checked by axe-core in headless Chromium.

Every page of ``web/urls.py`` is visited logged out and logged in, with content
in the feeds (a post with a mention, a hashtag and a link, follows,
notifications), with the error pages and with forms showing their errors; then
the compose box in the states that only show while typing (the counter's
warning and over-the-limit states, the disabled Post button). A serious or
critical axe violation fails the test, with a report that names the page, the
rule and the elements. axe leaves disabled controls out of its contrast rule
(WCAG exempts them), so the disabled Post button's contrast is measured here
from its computed colours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from coloraide import Color
from django.urls import Resolver404, resolve
from playwright.sync_api import Browser, Page, expect

from application.feeds import FeedUnavailableError
from application.service import Chirp
from tests.e2e.actions import PASSWORD, log_in, submit_post
from web.services import sign_up
from web.urls import urlpatterns

FAILING_IMPACTS = {"serious", "critical"}
AA_TEXT_CONTRAST = 4.5
# The endpoints that never answer with a page of their own.
NOT_PAGES = {
    "compose_count": "answers the live counter with JSON",
    "health": "answers monitors with JSON",
    "logout": "always redirects",
    "post_create": "always redirects home, which shows a refused draft with its reason",
}


@dataclass(repr=False)
class Audit:
    """Runs axe on pages and keeps what it found, so one test reports every page."""

    axe: Axe = field(default_factory=Axe)
    failures: list[str] = field(default_factory=list)
    audited: set[str] = field(default_factory=set)  # URL names of the pages checked

    def check(self, page: Page, state: str) -> None:
        path = urlsplit(page.url).path
        try:
            self.audited.add(resolve(path).url_name or path)
        except Resolver404:
            self.audited.add("(no URL pattern)")
        violations: list[dict[str, Any]] = self.axe.run(page).response["violations"]
        for violation in violations:
            if violation["impact"] in FAILING_IMPACTS:
                self.failures.append(describe(violation, f"{page.url} ({state})"))

    def report(self) -> str:
        return f"{len(self.failures)} serious or critical violations:\n\n" + "\n\n".join(
            self.failures
        )


def describe(violation: dict[str, Any], where: str) -> str:
    lines = [
        f"{where}: {violation['id']} ({violation['impact']}): {violation['help']}",
        f"  {violation['helpUrl']}",
    ]
    for node in violation["nodes"]:
        target = " ".join(str(part) for part in node["target"])
        summary = " ".join(str(node.get("failureSummary", "")).split())
        lines.append(f"  - {target}: {summary}")
        lines.append(f"    {node['html'][:200]}")
    return "\n".join(lines)


def visit(page: Page, audit: Audit, url: str, status: int, state: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == status, (url, response)
    audit.check(page, state)


@pytest.fixture
def people(live_chirp: Chirp) -> dict[str, str]:
    """Alice, Bob and Carol, who follow each other and post; their posts' ids."""
    for username, name in [("alice", "Alice A."), ("bob", "Bob B."), ("carol", "Carol C.")]:
        sign_up(live_chirp, username, PASSWORD, name)
    live_chirp.follow("alice", "bob")
    live_chirp.follow("bob", "alice")
    live_chirp.follow("carol", "alice")
    bob_post = live_chirp.post("bob", "Hello @alice, this is #Chirp: https://example.com/about")
    alice_post = live_chirp.post("alice", "Reading about #Chirp with @bob")
    live_chirp.sync()  # written here, outside any page: projected before the pages read
    return {"bob_post": str(bob_post), "alice_post": str(alice_post)}


def test_every_page_has_no_serious_accessibility_violations(
    browser: Browser,
    live_server: object,
    live_chirp: Chirp,
    people: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = str(live_server)
    audit = Audit()
    public = [
        ("/", 200),
        ("/@alice", 200),
        ("/@alice/followers", 200),
        ("/@alice/following", 200),
        (f"/@bob/{people['bob_post']}", 200),
        ("/tags/chirp", 200),
        ("/tags/nothinghere", 404),  # a tag nobody used: a page saying how to start it
        ("/@nobody", 404),
        ("/no/such/page", 404),
        ("/@alice?cursor=garbage!!", 400),
        ("/@alice/followers?page=x", 400),
    ]

    visitor = browser.new_context().new_page()
    for path, status in [*public, ("/signup", 200), ("/login", 200)]:
        visit(visitor, audit, base + path, status, "logged out")
    visit(visitor, audit, f"{base}/notifications", 200, "logged out, sent to log in")
    visitor.fill("#id_username", "alice")
    visitor.fill("#id_password", "not the password")
    visitor.click("form button[type=submit]")
    expect(visitor.locator(".errorlist").first).to_be_visible()
    audit.check(visitor, "log-in form with an error")
    visitor.goto(f"{base}/signup")
    visitor.fill("#id_username", "bob")
    visitor.fill("#id_password", PASSWORD)
    visitor.fill("#id_password_again", PASSWORD + "x")
    visitor.click("form button[type=submit]")
    expect(visitor.locator(".errorlist").first).to_be_visible()
    audit.check(visitor, "sign-up form with errors")

    alice = browser.new_context().new_page()
    log_in(alice, base, "alice")
    own_pages = [
        ("/notifications", 200),
        ("/settings", 200),
        ("/@bob", 200),  # followed: an Unfollow button
        ("/@carol", 200),  # not followed: a Follow button
        (f"/@alice/{people['alice_post']}", 200),  # the author's: a Delete button
    ]
    for path, status in [*public, *own_pages]:
        visit(alice, audit, base + path, status, "logged in")
    alice.goto(f"{base}/")
    expect(alice.locator(".feed")).to_contain_text("this is")
    refused_posts = [
        ("/post", {"text": "x" * 281}, 200),  # back home, with the draft and the reason
        ("/settings", {"display_name": "x" * 51, "bio": ""}, 400),
        ("/@alice/follow", {}, 400),
        ("/@nobody/unfollow", {}, 404),
        (f"/@bob/{people['bob_post']}/delete", {}, 403),
    ]
    for path, fields, status in refused_posts:
        assert submit_post(alice, path, fields) == status, path
        audit.check(alice, f"logged in, refused POST to {path}")
        alice.goto(f"{base}/")

    def unavailable(*args: object, **kwargs: object) -> object:
        raise FeedUnavailableError("Redis is unavailable")

    monkeypatch.setattr(live_chirp.provider, "read", unavailable)
    visit(alice, audit, f"{base}/", 503, "logged in, feeds unavailable")
    monkeypatch.undo()

    pages = {pattern.name for pattern in urlpatterns if pattern.name} - set(NOT_PAGES)
    assert pages <= audit.audited, f"pages never checked: {sorted(pages - audit.audited)}"
    assert not audit.failures, audit.report()


def test_compose_states_while_typing_have_enough_contrast(
    browser: Browser, live_server: object, live_chirp: Chirp
) -> None:
    base = str(live_server)
    sign_up(live_chirp, "alice", PASSWORD, "Alice A.")
    live_chirp.sync()
    page = browser.new_context().new_page()
    log_in(page, base, "alice")
    counter = page.locator("#remaining")
    button = page.locator("#post-button")
    audit = Audit()

    page.fill("#id_text", "x" * 265)
    expect(counter).to_have_text("15")
    expect(counter).to_have_class(re.compile(r"\bwarn\b"))
    audit.check(page, "counter warning: 15 characters left")

    page.fill("#id_text", "x" * 281)
    expect(counter).to_have_text("-1")
    expect(counter).to_have_class(re.compile(r"\bover\b"))
    expect(button).to_be_disabled()
    audit.check(page, "counter over the limit, Post button disabled")
    assert not audit.failures, audit.report()

    color, background, opacity = button.evaluate(
        "b => { const s = getComputedStyle(b); return [s.color, s.backgroundColor, s.opacity]; }"
    )
    # Computed colours are what is drawn only when nothing shows through them.
    assert (opacity, Color(background).alpha()) == ("1", 1), (opacity, background)
    contrast = Color(color).contrast(Color(background), method="wcag21")
    assert contrast >= AA_TEXT_CONTRAST, (
        f"disabled Post button: {color} on {background} is {contrast:.2f}:1"
    )

"""End to end in a real browser: headless Debian Chromium driven by Playwright.

Two people sign up; one follows the other, who posts with a #tag and an
@mention; the follower sees the post in their timeline, on the tag page and in
notifications; the author deletes it and it is gone from all three.
"""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from application.service import Chirp
from domain.text import weighted_length
from tests.e2e.actions import sign_up


def test_follow_post_see_everywhere_delete_gone_everywhere(
    browser: Browser, live_server: object, live_chirp: Chirp
) -> None:
    base = str(live_server)
    alice = browser.new_context().new_page()
    bob = browser.new_context().new_page()
    sign_up(alice, base, "alice", "Alice")
    sign_up(bob, base, "bob", "Bob")

    bob.goto(f"{base}/@alice")
    bob.click("form button:has-text('Follow')")
    expect(bob.locator(".profile")).to_contain_text("Unfollow")

    text = "Hello @bob, welcome to #BrowserTest 日本"
    alice.goto(f"{base}/")
    alice.fill("#id_text", text)
    # The live counter shows what the server will count.
    expect(alice.locator("#remaining")).to_have_text(str(280 - weighted_length(text)))
    alice.click("#post-button")
    expect(alice.locator(".feed")).to_contain_text("welcome to")

    pages = [f"{base}/", f"{base}/tags/browsertest", f"{base}/notifications"]
    for url in pages:
        bob.goto(url)
        expect(bob.locator(".feed")).to_contain_text("welcome to")
    bob.goto(f"{base}/tags/browsertest")
    expect(bob.locator("a.mention")).to_have_attribute("href", "/@bob")

    alice.goto(f"{base}/@alice")
    alice.click(".post a.time")
    alice.click("a:has-text('Delete this post')")
    expect(alice.locator("main")).to_contain_text("cannot be undone")
    alice.click("button:has-text('Yes, delete it')")
    expect(alice.locator("main")).to_contain_text("You have not posted yet")

    for url in pages:
        bob.goto(url)
        expect(bob.locator("main")).not_to_contain_text("welcome to")


def test_the_counter_says_why_a_draft_far_past_the_limit_is_refused(
    browser: Browser, live_server: object, live_chirp: Chirp
) -> None:
    base = str(live_server)
    page = browser.new_context().new_page()
    sign_up(page, base, "carol", "Carol")
    page.fill("#id_text", "x" * 2001)
    expect(page.locator("#compose-problem")).to_have_text(
        "a draft may have at most 2000 characters; this one has 2001"
    )
    expect(page.locator("#post-button")).to_be_disabled()
    page.fill("#id_text", "short again")
    expect(page.locator("#remaining")).to_have_text(str(280 - len("short again")))
    expect(page.locator("#compose-problem")).to_have_text("")
    expect(page.locator("#post-button")).to_be_enabled()

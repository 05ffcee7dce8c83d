"""End to end in a real browser: headless Debian Chromium driven by Playwright.

Two people sign up; one follows the other, who posts with a #tag and an
@mention; the follower sees the post in their timeline, on the tag page and in
notifications; the author deletes it and it is gone from all three.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from application.service import Chirp
from chirp.bootstrap import Settings, build_chirp
from domain.text import weighted_length
from tests.services import services_required
from web.runtime import use_chirp

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "browser-test-password-1"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop running in this thread, which
    # makes Django refuse the test database teardown unless told it is safe.
    if shutil.which(CHROMIUM) is None:
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def live_chirp(transactional_db: None) -> Iterator[Chirp]:
    instance = build_chirp(Settings(database_url="memory:"))
    previous = use_chirp(instance)
    yield instance
    use_chirp(previous)
    instance.close()


def sign_up(page: Page, base: str, username: str, display_name: str) -> None:
    page.goto(f"{base}/signup")
    page.fill("#id_username", username)
    page.fill("#id_display_name", display_name)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_password_again", PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator("nav")).to_contain_text(f"@{username}")


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
    alice.click("button:has-text('Delete this post')")
    expect(alice.locator("main")).to_contain_text("You have not posted yet")

    for url in pages:
        bob.goto(url)
        expect(bob.locator("main")).not_to_contain_text("welcome to")

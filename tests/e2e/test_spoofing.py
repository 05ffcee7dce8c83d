"""Spoofing in a real browser: display names and posts that try to reverse,
hide or imitate a handle.

Today's rules refuse direction controls and invisible characters in names,
but a log written before them still replays, so the names come from such a
log here (``store_user_from_an_old_log``), beside a right-to-left name that
signs up through the form. On every page that shows a name beside its
@handle, the handle must read ``@name`` left to right, each character to the
right of the one before it, and sit to the right of the name.
"""

from __future__ import annotations

from uuid import UUID

from playwright.sync_api import Browser, Locator, Page, expect

from application.service import Chirp
from tests.e2e.actions import sign_up
from tests.legacy_events import store_user_from_an_old_log

# username -> display name, as stored in an old log
OLD_LOG_NAMES = {
    "dn285809": "Evil \u202e",  # right-to-left override, never closed
    "rle123": "\u202bMallory",  # right-to-left embedding, never closed
    "rli456": "\u2067Trudy",  # right-to-left isolate, never closed
    "zwsp": "Ali\u200bce Liddell",  # zero width space: looks like Alice
    "linesep": "Alice\u2028Liddell",  # line separator
}
# What each name shows: the refused characters removed (a line separator
# becomes a space).
SHOWN = {
    "dn285809": "Evil",
    "rle123": "Mallory",
    "rli456": "Trudy",
    "zwsp": "Alice Liddell",
    "linesep": "Alice Liddell",
    "rtl789": "\u0639\u0644\u064a",
}

# The left edge of each character of an element's text, in reading order.
CHARACTER_LEFT_EDGES = """
(element) => {
  const edges = [];
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      edges.push(range.getBoundingClientRect().left);
    }
  }
  return edges;
}
"""


def handle_of(page: Page, username: str) -> Locator:
    """Each element on the page whose text is exactly ``@username``."""
    return page.get_by_text(f"@{username}", exact=True)


def assert_reads_left_to_right(handle: Locator, username: str) -> None:
    assert handle.inner_text() == f"@{username}"
    edges: list[float] = handle.evaluate(CHARACTER_LEFT_EDGES)
    assert len(edges) == len(username) + 1
    assert edges == sorted(edges) and len(set(edges)) == len(edges), (username, edges)


def assert_name_then_handle(page: Page, username: str) -> int:
    """Check every name-and-handle pair of ``username`` on the page; return
    how many there were."""
    handles = handle_of(page, username)
    pairs = 0
    for index in range(handles.count()):
        handle = handles.nth(index)
        assert_reads_left_to_right(handle, username)
        name = handle.locator("xpath=preceding-sibling::*[1]")
        if name.count() == 0:
            continue  # a handle on its own ("@name mentioned you")
        pairs += 1
        assert name.inner_text() == SHOWN[username]
        name_box, handle_box = name.bounding_box(), handle.bounding_box()
        assert name_box is not None and handle_box is not None
        # On the same line, and entirely to the right of the name.
        assert abs(name_box["y"] - handle_box["y"]) < 4, (username, name_box, handle_box)
        assert handle_box["x"] >= name_box["x"] + name_box["width"], (
            username,
            name_box,
            handle_box,
        )
    return pairs


def test_display_names_cannot_reverse_or_move_the_handle(
    browser: Browser, live_server: object, live_chirp: Chirp
) -> None:
    base = str(live_server)
    bob = browser.new_context().new_page()
    sign_up(bob, base, "bob", "Bob")
    rtl = browser.new_context().new_page()
    sign_up(rtl, base, "rtl789", SHOWN["rtl789"])  # a right-to-left name the rules allow
    for username, display_name in OLD_LOG_NAMES.items():
        store_user_from_an_old_log(live_chirp, username, display_name)
    post_ids: dict[str, UUID] = {}
    for username in SHOWN:
        live_chirp.follow(username, "bob")
        post_ids[username] = live_chirp.post(username, f"hi @bob from {username} #spoof")
    live_chirp.sync()  # written here, outside any page: projected before the pages read

    pages = [f"{base}/notifications", f"{base}/tags/spoof", f"{base}/@bob/followers"]
    for url in pages:
        bob.goto(url)
        for username in SHOWN:
            assert assert_name_then_handle(bob, username) >= 1, (url, username)
    for username in SHOWN:
        for url in [f"{base}/@{username}", f"{base}/@{username}/{post_ids[username]}"]:
            bob.goto(url)
            assert assert_name_then_handle(bob, username) >= 1, url
        bob.goto(f"{base}/@{username}")
        expect(bob).to_have_title(f"\u2068{SHOWN[username]}\u2069 (@{username}) · Chirp")


def test_a_mention_reads_correctly_inside_reversed_or_right_to_left_text(
    browser: Browser, live_server: object, live_chirp: Chirp
) -> None:
    base = str(live_server)
    page = browser.new_context().new_page()
    live_chirp.register("alice", "Alice")
    live_chirp.register("bob", "Bob")
    live_chirp.post("alice", "\u202eoverride then @bob")
    live_chirp.post(
        "alice", "\u0645\u0631\u062d\u0628\u0627 @bob \u0643\u064a\u0641 \u062d\u0627\u0644\u0643"
    )
    live_chirp.sync()
    page.goto(f"{base}/@alice")
    mentions = page.locator("a.mention")
    expect(mentions).to_have_count(2)
    for index in range(2):
        assert_reads_left_to_right(mentions.nth(index), "bob")


def test_arabic_and_hebrew_posts_are_right_aligned(
    browser: Browser, live_server: object, live_chirp: Chirp
) -> None:
    base = str(live_server)
    page = browser.new_context().new_page()
    live_chirp.register("alice", "Alice")
    texts = {
        "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645": "rtl",
        "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd": "rtl",
        "hello world": "ltr",
    }
    for text in texts:
        live_chirp.post("alice", text)
    live_chirp.sync()
    page.goto(f"{base}/@alice")
    for text, direction in texts.items():
        paragraph = page.locator("p.text", has_text=text)
        assert paragraph.evaluate("(p) => getComputedStyle(p).direction") == direction, text
        text_box = paragraph.evaluate(
            "(p) => { const r = document.createRange(); r.selectNodeContents(p);"
            " const t = r.getBoundingClientRect(), b = p.getBoundingClientRect();"
            " return [t.left - b.left, b.right - t.right]; }"
        )
        left_gap, right_gap = text_box
        if direction == "rtl":
            assert right_gap < 2 < left_gap, (text, text_box)
        else:
            assert left_gap < 2 < right_gap, (text, text_box)


def test_the_compose_box_says_why_a_post_cannot_be_posted(
    browser: Browser, live_server: object, live_chirp: Chirp
) -> None:
    base = str(live_server)
    page = browser.new_context().new_page()
    sign_up(page, base, "alice", "Alice")
    page.fill("#id_text", "\u200b\u200b")
    expect(page.locator("#compose-problem")).to_contain_text("a post needs some visible text")
    expect(page.locator("#post-button")).to_be_disabled()
    page.fill("#id_text", "hello")
    expect(page.locator("#compose-problem")).to_have_text("")
    expect(page.locator("#post-button")).to_be_enabled()

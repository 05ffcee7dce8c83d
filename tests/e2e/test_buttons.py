"""How buttons look in the browser, read from Chromium's computed styles: a
disabled Post button looks disabled, and every button uses the page's font."""

from __future__ import annotations

from playwright.sync_api import Browser, Locator, expect

from application.service import Chirp
from tests.e2e.actions import PASSWORD, log_in
from web.services import sign_up

LOOKS = """b => {
    const style = getComputedStyle(b);
    return {
        cursor: style.cursor,
        color: style.color,
        background: style.backgroundColor,
        opacity: style.opacity,
    };
}"""


def looks(button: Locator) -> dict[str, str]:
    result: dict[str, str] = button.evaluate(LOOKS)
    return result


def test_a_disabled_post_button_looks_disabled(
    browser: Browser, live_server: object, live_chirp: Chirp
) -> None:
    sign_up(live_chirp, "alice", PASSWORD)
    live_chirp.sync()  # written here, outside any page: projected before the pages read
    page = browser.new_context().new_page()
    log_in(page, str(live_server), "alice")
    button = page.locator("#post-button")

    page.fill("#id_text", "ready to post")
    expect(button).to_be_enabled()
    enabled = looks(button)
    page.fill("#id_text", "")
    expect(button).to_be_disabled()
    disabled = looks(button)

    assert enabled["cursor"] == "pointer"
    assert disabled["cursor"] == "not-allowed"
    drawn = ("color", "background", "opacity")
    assert [disabled[key] for key in drawn] != [enabled[key] for key in drawn], disabled


def test_buttons_use_the_page_font(
    browser: Browser, live_server: object, live_chirp: Chirp
) -> None:
    sign_up(live_chirp, "alice", PASSWORD)
    sign_up(live_chirp, "bob", PASSWORD)
    live_chirp.sync()
    base = str(live_server)
    page = browser.new_context().new_page()
    fonts: dict[str, list[str]] = {}

    def read_fonts(where: str) -> None:
        buttons = page.locator("button, .button")
        expect(buttons.first).to_be_visible()
        fonts[where] = buttons.evaluate_all("all => all.map(b => getComputedStyle(b).fontFamily)")

    page.goto(f"{base}/login")
    read_fonts("log-in page")
    log_in(page, base, "alice")
    read_fonts("home")
    page.goto(f"{base}/@bob")
    read_fonts("profile")
    page_font = page.evaluate("getComputedStyle(document.body).fontFamily")

    assert page_font.startswith("system-ui"), page_font
    assert all(fonts.values()), fonts
    assert {font for found in fonts.values() for font in found} == {page_font}, fonts

"""What a person does in the browser tests, as Playwright steps."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

PASSWORD = "browser-test-password-1"
SUBMIT_POST = (Path(__file__).parent / "submit_post.js").read_text()


def sign_up(page: Page, base: str, username: str, display_name: str) -> None:
    page.goto(f"{base}/signup")
    page.fill("#id_username", username)
    page.fill("#id_display_name", display_name)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_password_again", PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator("nav")).to_contain_text(f"@{username}")


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator("nav")).to_contain_text(f"@{username}")


def submit_post(page: Page, path: str, fields: dict[str, str] | None = None) -> int:
    """POST ``fields`` to ``path`` with the page's CSRF token, as a stale or
    tampered form would; wait for the page that answers and return its status."""
    with page.expect_navigation() as navigation:
        page.evaluate(SUBMIT_POST, [path, fields or {}])
    response = navigation.value
    assert response is not None, f"no response to the POST to {path}"
    return response.status

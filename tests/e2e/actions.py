"""What a person does in the browser tests, as Playwright steps."""

from __future__ import annotations

from playwright.sync_api import Page, expect

PASSWORD = "browser-test-password-1"


def sign_up(page: Page, base: str, username: str, display_name: str) -> None:
    page.goto(f"{base}/signup")
    page.fill("#id_username", username)
    page.fill("#id_display_name", display_name)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_password_again", PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator("nav")).to_contain_text(f"@{username}")

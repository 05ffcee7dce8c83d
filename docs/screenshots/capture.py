"""Capture the README's screenshots from a running Chirp (``make run``).

    .venv/bin/python docs/screenshots/capture.py [http://127.0.0.1:8000]

Logs in with the demo account and saves PNGs of the main pages beside this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 860})
        page.goto(f"{base}/")
        page.screenshot(path=HERE / "welcome.png")
        page.goto(f"{base}/login")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "chirp-demo-password")
        page.click("main form button[type=submit]")
        page.wait_for_url(f"{base}/")
        page.fill("#id_text", "Drafting a post with #chirp and @bob: the counter is live")
        page.wait_for_function("document.querySelector('#remaining').textContent !== '280'")
        page.screenshot(path=HERE / "home.png")
        for name, path in [("profile", "/@bob"), ("tag", "/tags/chirp"),
                           ("notifications", "/notifications")]:  # fmt: skip
            page.goto(f"{base}{path}")
            page.screenshot(path=HERE / f"{name}.png")
        mobile = browser.new_page(viewport={"width": 390, "height": 800})
        mobile.goto(f"{base}/@alice")
        mobile.screenshot(path=HERE / "mobile-profile.png")
        browser.close()


if __name__ == "__main__":
    main()

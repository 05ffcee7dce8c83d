"""Fixtures of the browser tests: headless Debian Chromium driven by Playwright,
and a fresh in-memory Chirp behind pytest-django's live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
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

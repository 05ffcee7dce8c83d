"""A real Chirp web server in a subprocess, and a browser-like HTTP client for it.

``start_server`` migrates a fresh data directory and serves Chirp from it
with ``tests.wsgi_server`` (a thread per request), with the test settings
(a fast password hasher) and the embedded defaults: SQLite stores in the
data directory, in-memory feeds. ``Visitor``
keeps its own cookies, fetches the CSRF token like a browser and does not
follow redirects, so a test sees each answer's status.
"""

from __future__ import annotations

import http.cookiejar
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUEST_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Visitor:
    """One browser: its own cookie jar (session, CSRF token)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirects()
        )

    def get(self, path: str) -> Answer:
        return self._send(urllib.request.Request(self.base_url + path))

    def post(self, path: str, form: dict[str, str]) -> Answer:
        """POST ``form`` with the CSRF token from the cookie (fetching the
        page first when there is none yet, as a browser would)."""
        if self._csrf_token() is None:
            self.get(path)
        token = self._csrf_token()
        assert token is not None, f"GET {path} set no CSRF cookie"
        data = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token}).encode()
        return self._send(urllib.request.Request(self.base_url + path, data=data))

    def _csrf_token(self) -> str | None:
        return next((c.value for c in self.cookies if c.name == "csrftoken"), None)

    def _send(self, request: urllib.request.Request) -> Answer:
        try:
            with self.opener.open(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:  # every status but 2xx, redirects too
            return Answer(error.code, error.read().decode())


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "FEED_PROVIDER", "CHIRP_PROJECTION")
    }
    env.update(
        CHIRP_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="tests.django_settings", **extra
    )
    return env


@contextmanager
def start_server(data_dir: Path, **extra_env: str) -> Iterator[str]:
    """Run Chirp on ``data_dir``; yield its base URL; stop it on exit."""
    env = server_env(data_dir, **extra_env)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, timeout=120)
    handle, name = tempfile.mkstemp(prefix="server-", suffix=".log", dir=data_dir)
    log = Path(name)
    with open(handle, "wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.wsgi_server"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()  # written once it listens
        if not port.isdigit():
            raise RuntimeError(f"the server did not start: {log.read_text()}")
        yield f"http://127.0.0.1:{port.decode()}"
    finally:
        process.terminate()
        process.wait(timeout=30)

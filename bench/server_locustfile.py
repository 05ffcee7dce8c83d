"""The locust users of bench/server.py, which runs them (``locust -f`` this file).

Every user logs in as a person of the seeded network as it starts. Readers
request one page as fast as it comes (the plan's ``read_path``: Chirp's home
page, or the trivial view), closed-loop; writers post and follow or unfollow
at a fixed rate, browsers read profile and tag pages at a fixed rate, so that
the server carries the same writes and other reads beside either page. Every
answer is checked (status, and a text the page must hold); a wrong one is a
failure. Each request is recorded (name, start, duration, error) in the
plan's ``record`` file when the run stops, for exact percentiles.

The plan is a JSON file named by ``BENCH_PLAN``, written by bench/server.py.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, constant_throughput, events, task
from locust.contrib.fasthttp import ResponseContextManager

PLAN: dict[str, Any] = json.loads(Path(os.environ["BENCH_PLAN"]).read_text())
_accounts = {role: itertools.cycle(PLAN[role]) for role in ("readers", "writers", "browsers")}
_records: list[tuple[str, str, float, float, str | None]] = []


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None,
    start_time: float,
    **_: Any,
) -> None:
    error = None if exception is None else f"{type(exception).__name__}: {exception}"
    _records.append((request_type, name, start_time, response_time, error))


@events.test_stop.add_listener
def _write_records(**_: Any) -> None:
    Path(PLAN["record"]).write_text(json.dumps(_records))


def _check(response: ResponseContextManager, status: int, text: str = "") -> None:
    if response.status_code != status:
        error = getattr(response, "error", None)  # no answer at all: why (status 0)
        reason = f" ({type(error).__name__}: {error})" if error is not None else ""
        response.failure(f"status {response.status_code}, not {status}{reason}")
    elif text and text not in (response.text or ""):
        response.failure(f"the page does not hold {text!r}")
    else:
        response.success()


class _Person(FastHttpUser):
    abstract = True
    role = ""

    def on_start(self) -> None:
        self.username: str = next(_accounts[self.role])
        self.client.get("/login", name="log in")
        form = {
            "username": self.username,
            "password": PLAN["password"],
            "csrfmiddlewaretoken": self._csrf_token(),
        }
        with self.client.post(
            "/login", data=form, name="log in", allow_redirects=False, catch_response=True
        ) as response:
            _check(response, 302)

    def _csrf_token(self) -> str:
        return next(c.value or "" for c in self.client.cookiejar if c.name == "csrftoken")

    def _send(self, path: str, name: str, form: dict[str, str]) -> None:
        """POST a form, as its page would, expecting the redirect after it."""
        with self.client.post(
            path,
            data=form,
            headers={"X-CSRFToken": self._csrf_token()},
            name=name,
            allow_redirects=False,
            catch_response=True,
        ) as response:
            _check(response, 302)


class Reader(_Person):
    role = "readers"
    weight = 1  # every user that is not a writer or a browser
    wait_time = constant(0)

    @task
    def read(self) -> None:
        marker = PLAN["read_marker"].format(username=self.username)
        with self.client.get(PLAN["read_path"], name=PLAN["read_name"], catch_response=True) as r:
            _check(r, 200, marker)


class Writer(_Person):
    role = "writers"
    abstract = not PLAN["writers"]
    fixed_count = len(PLAN["writers"])
    wait_time = constant_throughput(PLAN["writes_per_second"])

    @task(2)
    def post(self) -> None:
        text = f"Benchmark post {uuid.uuid4().hex[:8]} from the load test #{PLAN['post_tag']}"
        self._send("/post", "post", {"text": text, "token": str(uuid.uuid4())})

    @task(1)
    def follow(self) -> None:
        self._send(f"/@{self._someone_else()}/follow", "follow", {})

    @task(1)
    def unfollow(self) -> None:
        self._send(f"/@{self._someone_else()}/unfollow", "unfollow", {})

    def _someone_else(self) -> str:
        """A person to follow: not oneself (following oneself is refused, a 400)."""
        others: list[str] = [name for name in PLAN["follow_targets"] if name != self.username]
        return random.choice(others)


class Browser(_Person):
    role = "browsers"
    abstract = not PLAN["browsers"]
    fixed_count = len(PLAN["browsers"])
    wait_time = constant_throughput(PLAN["browses_per_second"])

    @task(2)
    def profile(self) -> None:
        name = random.choice(PLAN["profiles"])
        with self.client.get(f"/@{name}", name="profile", catch_response=True) as response:
            _check(response, 200, f"@{name}")

    @task(1)
    def tag(self) -> None:
        tag = random.choice(PLAN["tags"])
        with self.client.get(f"/tags/{tag}", name="tag", catch_response=True) as response:
            _check(response, 200, f"#{tag}")

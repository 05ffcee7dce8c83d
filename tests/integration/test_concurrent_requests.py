"""Many requests at once on the embedded defaults end in clear answers.

A real server (``manage.py runserver``, threaded) on SQLite stores is sent 50
sign-ups, log-ins, posts or follows at the same moment. Each answer must be
what the person asked for (a redirect), or a clear refusal: 400 "already
taken", 503 "try again". Never a 500. Afterwards the stores agree: one
account per name, each with its ``UserRegistered`` event, no half-finished
sign-up left behind.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from application.commands import ChirpApplication
from chirp.bootstrap import Settings, event_store_env
from domain.errors import UserNotFound
from tests.web_server import Answer, Visitor, start_server

AT_ONCE = 50
PASSWORD = "a-long-test-password-42"
BARRIER_TIMEOUT_SECONDS = 120.0


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("concurrent") / "data"


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[str]:
    data_dir.mkdir(parents=True)
    with start_server(data_dir) as base_url:
        yield base_url


def at_once(visitors: list[Visitor], request: Callable[[int, Visitor], Answer]) -> list[Answer]:
    """Send ``request(i, visitor)`` from every visitor at the same moment."""
    barrier = threading.Barrier(len(visitors), timeout=BARRIER_TIMEOUT_SECONDS)

    def send(index: int) -> Answer:
        barrier.wait()
        return request(index, visitors[index])

    with ThreadPoolExecutor(len(visitors)) as pool:
        return list(pool.map(send, range(len(visitors))))


def sign_up_form(username: str) -> dict[str, str]:
    return {
        "username": username,
        "display_name": "",
        "password": PASSWORD,
        "password_again": PASSWORD,
    }


def ready_visitors(server: str, page: str, count: int = AT_ONCE) -> list[Visitor]:
    """Visitors who have loaded ``page`` (so they hold a CSRF token)."""
    visitors = [Visitor(server) for _ in range(count)]
    for visitor in visitors:
        assert visitor.get(page).status == 200
    return visitors


def logged_in_visitors(server: str, names: list[str]) -> list[Visitor]:
    visitors = []
    for name in names:
        visitor = Visitor(server)
        assert visitor.post("/signup", sign_up_form(name)).status == 302
        visitors.append(visitor)
    return visitors


def assert_clear(answers: list[Answer], refusals: dict[int, str]) -> None:
    """Every answer is a redirect (done) or a refusal with its message."""
    for answer in answers:
        if answer.status == 302:
            continue
        assert answer.status in refusals, (answer.status, answer.body[-2000:])
        assert refusals[answer.status] in answer.body


def accounts(data_dir: Path) -> tuple[list[str], int]:
    """Django's accounts, and how many are still marked pending."""
    with sqlite3.connect(data_dir / "web.sqlite") as conn:
        names = [row[0] for row in conn.execute("SELECT username FROM auth_user")]
        [(pending,)] = conn.execute("SELECT count(*) FROM web_pendingregistration").fetchall()
    return names, pending


def registered(data_dir: Path, names: list[str]) -> set[str]:
    """Which of ``names`` have their ``UserRegistered`` event in the event log."""
    app = ChirpApplication(env=event_store_env(Settings(data_dir=data_dir)))
    found = set()
    try:
        for name in names:
            try:
                found.add(app.get_user(name).username)
            except UserNotFound:
                continue
    finally:
        app.close()
    return found


BUSY = {503: "try again"}
TAKEN_OR_BUSY = {400: "already taken", 503: "try again"}


def test_sign_ups_of_different_names_at_once(server: str, data_dir: Path) -> None:
    names = [f"many{i}" for i in range(AT_ONCE)]
    visitors = ready_visitors(server, "/signup")

    answers = at_once(visitors, lambda i, v: v.post("/signup", sign_up_form(names[i])))

    assert_clear(answers, BUSY)
    signed_up = {name for name, a in zip(names, answers, strict=True) if a.status == 302}
    assert signed_up, Counter(a.status for a in answers)
    stored, pending = accounts(data_dir)
    ours = {name for name in stored if name.startswith("many")}
    assert signed_up <= ours
    assert registered(data_dir, names) == ours
    assert pending == 0


def test_sign_ups_of_one_name_at_once(server: str, data_dir: Path) -> None:
    visitors = ready_visitors(server, "/signup")

    answers = at_once(visitors, lambda i, v: v.post("/signup", sign_up_form("OneName")))

    assert_clear(answers, TAKEN_OR_BUSY)
    assert [a.status for a in answers].count(302) == 1
    stored, pending = accounts(data_dir)
    assert [name for name in stored if name.lower() == "onename"] == ["OneName"]
    assert registered(data_dir, ["onename"]) == {"OneName"}
    assert pending == 0


def test_log_ins_posts_and_follows_at_once(server: str, data_dir: Path) -> None:
    names = [f"busy{i}" for i in range(AT_ONCE)]
    logged_in_visitors(server, names)
    visitors = ready_visitors(server, "/login")

    logins = at_once(
        visitors, lambda i, v: v.post("/login", {"username": names[i], "password": PASSWORD})
    )
    assert_clear(logins, BUSY)
    in_session = [i for i, answer in enumerate(logins) if answer.status == 302]
    assert in_session, Counter(a.status for a in logins)
    members = [visitors[i] for i in in_session]
    for visitor in members:
        assert visitor.get("/").status == 200  # the session works

    texts = [f"post number {i} by {names[i]}" for i in in_session]
    posts = at_once(members, lambda k, v: v.post("/post", {"text": texts[k]}))
    assert_clear(posts, BUSY)

    targets = [names[(i + 1) % AT_ONCE] for i in in_session]
    follows = at_once(members, lambda k, v: v.post(f"/@{targets[k]}/follow", {}))
    assert_clear(follows, BUSY)

    reader = Visitor(server)
    for k, i in enumerate(in_session):
        if posts[k].status == 302:
            assert texts[k] in reader.get(f"/@{names[i]}").body
        if follows[k].status == 302:
            assert f"@{names[i]}" in reader.get(f"/@{targets[k]}/followers").body
    assert any(a.status == 302 for a in posts)
    assert any(a.status == 302 for a in follows)

"""Many requests at once on the embedded defaults end in clear answers.

Two real servers (a thread per request, as a web process runs) share one
data directory of SQLite stores; together they are sent 50 sign-ups,
log-ins, posts or follows at the same moment. Each answer must be
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
from contextlib import ExitStack
from pathlib import Path

import pytest

from application.commands import ChirpApplication
from chirp.bootstrap import event_store_env
from chirp.settings import Settings
from domain.errors import UserNotFound
from tests.web_server import Answer, Visitor, start_server

AT_ONCE = 50
SERVERS = 2
PASSWORD = "a-long-test-password-42"
BARRIER_TIMEOUT_SECONDS = 120.0


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("concurrent") / "data"


@pytest.fixture(scope="module")
def servers(data_dir: Path) -> Iterator[list[str]]:
    """The base URLs of the servers, all on ``data_dir``."""
    data_dir.mkdir(parents=True)
    with ExitStack() as stack:
        yield [stack.enter_context(start_server(data_dir)) for _ in range(SERVERS)]


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


def ready_visitors(servers: list[str], page: str, count: int = AT_ONCE) -> list[Visitor]:
    """Visitors, spread over the servers, who have loaded ``page`` (so they
    hold a CSRF token)."""
    visitors = [Visitor(servers[i % len(servers)]) for i in range(count)]
    for visitor in visitors:
        assert visitor.get(page).status == 200
    return visitors


def signed_up(servers: list[str], names: list[str]) -> None:
    for i, name in enumerate(names):
        visitor = Visitor(servers[i % len(servers)])
        assert visitor.post("/signup", sign_up_form(name)).status == 302


def outcomes(answers: list[Answer]) -> Counter[str]:
    """How many answers were each kind: done (a redirect), taken (the
    form's "already taken"), or anything else, by status and page title."""
    kinds: Counter[str] = Counter()
    for answer in answers:
        if answer.status == 302:
            kinds["done"] += 1
        elif answer.status == 400 and "already taken" in answer.body:
            kinds["taken"] += 1
        else:
            title = answer.body.partition("<title>")[2].partition("</title>")[0]
            kinds[f"{answer.status} {title.strip()}"] += 1
    return kinds


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


# Every request below must succeed: the stores' writers queue for each other
# for up to the busy timeout (20 s), far longer than a burst of 50 small
# transactions needs. What a person sees when a store is still busy after
# it (a 503 "try again", nothing half-written) is tested in
# tests/web/test_busy_stores.py.


def test_sign_ups_of_different_names_at_once(servers: list[str], data_dir: Path) -> None:
    names = [f"many{i}" for i in range(AT_ONCE)]
    visitors = ready_visitors(servers, "/signup")

    answers = at_once(visitors, lambda i, v: v.post("/signup", sign_up_form(names[i])))

    assert outcomes(answers) == {"done": AT_ONCE}
    stored, pending = accounts(data_dir)
    assert sorted(name for name in stored if name.startswith("many")) == sorted(names)
    assert registered(data_dir, names) == set(names)
    assert pending == 0


def test_sign_ups_of_one_name_at_once(servers: list[str], data_dir: Path) -> None:
    visitors = ready_visitors(servers, "/signup")

    answers = at_once(visitors, lambda i, v: v.post("/signup", sign_up_form("OneName")))

    assert outcomes(answers) == {"done": 1, "taken": AT_ONCE - 1}
    stored, pending = accounts(data_dir)
    assert [name for name in stored if name.lower() == "onename"] == ["OneName"]
    assert registered(data_dir, ["onename"]) == {"OneName"}
    assert pending == 0


def test_log_ins_posts_and_follows_at_once(servers: list[str], data_dir: Path) -> None:
    names = [f"busy{i}" for i in range(AT_ONCE)]
    signed_up(servers, names)
    visitors = ready_visitors(servers, "/login")

    logins = at_once(
        visitors, lambda i, v: v.post("/login", {"username": names[i], "password": PASSWORD})
    )
    assert outcomes(logins) == {"done": AT_ONCE}
    for visitor, name in zip(visitors, names, strict=True):
        assert f"@{name}" in visitor.get("/").body  # logged in as themselves

    texts = [f"post number {i} by {name}" for i, name in enumerate(names)]
    posts = at_once(visitors, lambda i, v: v.post("/post", {"text": texts[i]}))
    assert outcomes(posts) == {"done": AT_ONCE}

    targets = [names[(i + 1) % AT_ONCE] for i in range(AT_ONCE)]
    follows = at_once(visitors, lambda i, v: v.post(f"/@{targets[i]}/follow", {}))
    assert outcomes(follows) == {"done": AT_ONCE}

    for visitor, name, text, target in zip(visitors, names, texts, targets, strict=True):
        reader = Visitor(visitor.base_url)  # the server that took the writes
        assert text in reader.get(f"/@{name}").body
        assert f"@{name}" in reader.get(f"/@{target}/followers").body

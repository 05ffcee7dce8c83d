"""Loading a workload: the batched loader stores the log that applying each op
as its own command stores, refuses what the domain refuses with the same
message (the ops before it stored, none after), and gives way to another
writer that changed the store meanwhile."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.inmemory.feeds import InMemoryFeedProvider
from application.commands import ChirpApplication
from application.feed_names import timeline_feed
from application.replay import replay_feeds
from application.workload import WorkloadError, load_workload, load_workload_one_by_one
from chirp.bootstrap import build_commands
from chirp.settings import Settings
from domain.tweet import Tweet
from domain.user import User

Loader = Callable[[ChirpApplication, list[str]], dict[str, int]]


def batched(app: ChirpApplication, lines: list[str]) -> dict[str, int]:
    return load_workload(app, lines, batch_size=3)


def one_by_one(app: ChirpApplication, lines: list[str]) -> dict[str, int]:
    return load_workload_one_by_one(app, lines)


def at(minute: int) -> str:
    return f"2025-01-01T10:{minute:02d}:00.000Z"


def lines_of(ops: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(op) + "\n" for op in ops]


NETWORK: list[dict[str, Any]] = [
    {"op": "register", "username": "christopherj12345"},
    {"op": "register", "username": "mary1"},
    {"op": "register", "username": "bob2"},
    {"op": "follow", "follower": "mary1", "followee": "christopherj12345"},
    {"op": "follow", "follower": "bob2", "followee": "christopherj12345"},
    {"op": "follow", "follower": "christopherj12345", "followee": "mary1"},
    {"op": "post", "username": "christopherj12345", "text": "hi @mary1 #x", "at": at(0)},
    {"op": "post", "username": "mary1", "text": "yo @christopherj12345 @nobody9", "at": at(1)},
    {"op": "unfollow", "follower": "bob2", "followee": "christopherj12345"},
    {"op": "post", "username": "christopherj12345", "text": "second #x #y", "at": at(2)},
    {"op": "register", "username": "dora3"},
    {"op": "follow", "follower": "dora3", "followee": "mary1"},
    {"op": "follow", "follower": "bob2", "followee": "christopherj12345"},
    {"op": "delete", "username": "christopherj12345", "post_index": 0},
    {"op": "post", "username": "dora3", "text": "hello @bob2 https://example.com", "at": at(3)},
    {"op": "follow", "follower": "mary1", "followee": "dora3"},
    {"op": "delete", "username": "dora3", "post_index": 3},
    {"op": "post", "username": "bob2", "text": "last one", "at": at(4)},
    {"op": "unknown", "whatever": 1},
]


def stored_log(app: ChirpApplication) -> list[tuple[Any, ...]]:
    """The log, post ids replaced by the post's place among the posts (the
    only thing that differs between two loads: they are random)."""
    posts: dict[UUID, int] = {}
    log: list[tuple[Any, ...]] = []
    for notification in app.recorder.select_notifications(start=1, limit=10_000):
        event = app.mapper.to_domain_event(notification)
        version = event.originator_version
        if isinstance(event, User.Registered):
            log.append(("registered", event.username, event.display_name, version))
        elif isinstance(event, User.Followed | User.Unfollowed):
            log.append((type(event).__name__, event.follower, event.followee, version))
        elif isinstance(event, Tweet.Posted):
            posts[event.originator_id] = len(posts)
            entities = event.entities
            log.append(("posted", event.author, event.text, event.posted_at, entities, version))
        elif isinstance(event, Tweet.Deleted):
            log.append(("deleted", posts[event.originator_id], event.author, version))
        else:  # pragma: no cover - the workload writes no other event
            raise AssertionError(f"unexpected {event!r}")
    return log


def home_timelines(app: ChirpApplication) -> dict[str, list[tuple[Any, ...]]]:
    provider = InMemoryFeedProvider()
    replay_feeds(app, provider)
    return {
        name: [(a.actor, a.verb, a.time) for a in provider.read(timeline_feed(name), limit=100)]
        for name in ("christophe12345", "mary1", "bob2", "dora3")
    }


def popo() -> ChirpApplication:
    return ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_the_batched_loader_stores_the_log_of_one_command_per_op(batch_size: int) -> None:
    fast, slow = popo(), popo()
    counts = load_workload(fast, lines_of(NETWORK), batch_size=batch_size)
    assert counts == load_workload_one_by_one(slow, lines_of(NETWORK))
    assert counts == {
        "register": 4,
        "follow": 6,
        "unfollow": 1,
        "post": 5,
        "delete": 2,
        "unknown": 1,
    }
    assert stored_log(fast) == stored_log(slow)
    assert len(stored_log(fast)) == 19 - 1  # every op but the unknown one
    assert home_timelines(fast) == home_timelines(slow)


def test_snapshots_are_taken_as_users_pass_each_hundred_events() -> None:
    names = [f"user{n}" for n in range(130)]
    ops = [{"op": "register", "username": name} for name in names]
    ops += [{"op": "follow", "follower": "user0", "followee": name} for name in names[1:]]
    fast = popo()
    load_workload(fast, lines_of(ops), batch_size=1000)
    user_id = User.create_id("user0")
    assert fast.snapshots is not None
    [snapshot] = fast.snapshots.get(user_id)
    assert snapshot.originator_version == 130  # one write took it past 100
    assert fast.repository.get(user_id).following == set(names[1:])


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"op": "register", "username": "mary1"}, "username 'mary1' is already taken"),
    ({"op": "follow", "follower": "mary1", "followee": "zed9"}, "there is no user @zed9"),
    ({"op": "follow", "follower": "mary1", "followee": "mary1"}, "you cannot follow yourself"),
    ({"op": "follow", "follower": "dora3", "followee": "mary1"}, "you already follow @mary1"),
    ({"op": "unfollow", "follower": "mary1", "followee": "bob2"}, "you do not follow @bob2"),
    ({"op": "post", "username": "bob2", "text": "x" * 281, "at": at(9)}, "280"),
    ({"op": "delete", "username": "bob2", "post_index": 2}, "only its author can delete a post"),
    ({"op": "delete", "username": "christopherj12345", "post_index": 0}, "already deleted"),
]


@pytest.mark.parametrize(("op", "message"), REFUSED)
def test_an_op_the_domain_refuses_stops_the_load_as_one_by_one_does(
    op: dict[str, Any], message: str
) -> None:
    ops = [*NETWORK[:-1], op, {"op": "register", "username": "after9"}]
    errors, logs = [], []
    for load in (batched, one_by_one):
        app = popo()
        with pytest.raises(WorkloadError) as refused:
            load(app, lines_of(ops))
        errors.append(str(refused.value))
        logs.append(stored_log(app))
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"line {len(NETWORK)}: ") and message in errors[0], errors[0]
    assert logs[0] == logs[1]
    assert len(logs[0]) == len(NETWORK) - 1  # every op before it, none after


def test_a_malformed_op_stops_the_load_with_the_ops_before_it_stored() -> None:
    lines = [
        *lines_of(NETWORK[:5]),
        '{"op": "follow", "follower": "mary1"}\n',
        *lines_of(NETWORK[5:]),
    ]
    errors, logs = [], []
    for load in (batched, one_by_one):
        app = popo()
        with pytest.raises(WorkloadError) as refused:
            load(app, lines)
        errors.append(str(refused.value))
        logs.append(stored_log(app))
    assert errors[0] == errors[1] == "line 6: malformed op (KeyError('followee'))"
    assert logs[0] == logs[1] and len(logs[0]) == 5


def other_writer_at(lines: list[str], line: int, write: Callable[[], object]) -> Iterator[str]:
    """``lines``, another writer's ``write`` made just before line ``line``
    (from 1) is handed over: after the loader applied the lines before it."""
    for number, text in enumerate(lines, start=1):
        if number == line:
            write()
        yield text


@pytest.fixture
def two_writers(tmp_path: Path) -> Iterator[tuple[ChirpApplication, ChirpApplication]]:
    settings = Settings(data_dir=tmp_path / "data")
    loader, other = build_commands(settings), build_commands(settings)
    yield loader, other
    loader.close()
    other.close()


def test_a_name_another_writer_registered_meanwhile_is_refused_at_its_line(
    two_writers: tuple[ChirpApplication, ChirpApplication],
) -> None:
    loader, other = two_writers
    ops = [{"op": "register", "username": name} for name in ("ann1", "ben2", "cat3", "dan4")]
    lines = other_writer_at(lines_of(ops), 4, lambda: other.register("ben2"))
    with pytest.raises(WorkloadError, match=r"^line 2: username 'ben2' is already taken$"):
        load_workload(loader, lines, batch_size=10)
    assert [e[1] for e in stored_log(loader)] == ["ben2", "ann1"]  # the other's, then line 1


def test_a_user_another_writer_changed_meanwhile_is_loaded_again(
    two_writers: tuple[ChirpApplication, ChirpApplication],
) -> None:
    loader, other = two_writers
    for name in ("ann1", "ben2", "cat3", "dan4"):
        other.register(name)
    ops = [
        {"op": "follow", "follower": "ann1", "followee": "ben2"},
        {"op": "follow", "follower": "ann1", "followee": "cat3"},
        {"op": "post", "username": "ann1", "text": "hi @dan4", "at": at(1)},
    ]
    lines = other_writer_at(lines_of(ops), 2, lambda: other.follow("ann1", "dan4"))
    assert load_workload(loader, lines, batch_size=10) == {"follow": 2, "post": 1}
    assert loader.get_user("ann1").following == {"ben2", "cat3", "dan4"}
    assert [e[:3] for e in stored_log(loader)[4:]] == [
        ("Followed", "ann1", "dan4"),
        ("Followed", "ann1", "ben2"),
        ("Followed", "ann1", "cat3"),
        ("posted", "ann1", "hi @dan4"),
    ]

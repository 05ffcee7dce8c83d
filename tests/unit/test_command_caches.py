"""What a command remembers between commands stays right when another process
writes: two ChirpApplications on one SQLite event store stand for two web
processes, each with its own caches (registered names, aggregates).

- A rule is checked against the current state, not the copy cached before
  the other process's change (a double follow is refused).
- A command that loses a race to the other process runs again on the newer
  state, and says so (``ConcurrentChange``) if it loses every time.
- A name not registered when it was looked up resolves once it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.commands import CONFLICT_RETRIES, ChirpApplication, ConcurrentChange
from chirp.bootstrap import build_commands
from chirp.settings import Settings
from domain.errors import AlreadyFollowing, NotFollowing, UserNotFound
from domain.tweet import Tweet


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[ChirpApplication, ChirpApplication]]:
    settings = Settings(data_dir=tmp_path)
    first, second = build_commands(settings), build_commands(settings)
    first.register("alice")
    first.register("bob")
    first.register("carol")
    yield first, second
    first.close()
    second.close()


def event_count(app: ChirpApplication) -> int:
    return app.recorder.max_notification_id() or 0


def test_both_processes_cache_aggregates(
    processes: tuple[ChirpApplication, ChirpApplication],
) -> None:
    """The tests below are about stale copies: there must be a cache."""
    for app in processes:
        assert app.repository.cache is not None


def test_a_follow_is_refused_against_what_another_process_stored(
    processes: tuple[ChirpApplication, ChirpApplication],
) -> None:
    here, there = processes
    assert not here.get_user("alice").follows("bob")  # alice cached here
    there.follow("alice", "bob")
    before = event_count(here)

    with pytest.raises(AlreadyFollowing):
        here.follow("alice", "bob")
    assert event_count(here) == before

    there.unfollow("alice", "bob")
    here.follow("alice", "bob")  # not following any more: allowed again
    with pytest.raises(NotFollowing):
        there.unfollow("alice", "carol")
    assert there.get_user("alice").following == {"bob"}


def race(
    here: ChirpApplication, monkeypatch: pytest.MonkeyPatch, other_write: Any, times: int
) -> list[int]:
    """Make ``here``'s next ``times`` saves lose a race: just before each,
    the other process writes (``other_write``). Returns the events each of
    ``here``'s saves saw stored before it."""
    save = here.save
    seen: list[int] = []

    def save_after_the_other(*objs: Any, **kwargs: Any) -> Any:
        if len(seen) < times:
            other_write(len(seen))
        seen.append(event_count(here))
        return save(*objs, **kwargs)

    monkeypatch.setattr(here, "save", save_after_the_other)
    return seen


def test_a_command_that_loses_a_race_runs_again_on_the_newer_state(
    processes: tuple[ChirpApplication, ChirpApplication], monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = processes
    here.get_user("alice")  # cached here before the other process's follow
    race(here, monkeypatch, lambda _: there.follow("alice", "carol"), times=1)

    here.follow("alice", "bob")  # lost to the follow of carol, then stored

    assert here.get_user("alice").following == {"bob", "carol"}
    assert there.get_user("alice").following == {"bob", "carol"}


def test_a_lost_race_to_the_same_follow_is_refused_on_the_newer_state(
    processes: tuple[ChirpApplication, ChirpApplication], monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = processes
    here.get_user("alice")
    race(here, monkeypatch, lambda _: there.follow("alice", "bob"), times=1)
    before = event_count(here)

    with pytest.raises(AlreadyFollowing):
        here.follow("alice", "bob")
    assert event_count(here) == before + 1  # only the other process's follow


def test_a_command_that_loses_every_race_says_so_and_stores_nothing(
    processes: tuple[ChirpApplication, ChirpApplication], monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = processes

    def profile_changes(attempt: int) -> None:
        there.update_profile("alice", "Alice", f"bio {attempt}")

    seen = race(here, monkeypatch, profile_changes, times=CONFLICT_RETRIES)
    before = event_count(here)

    with pytest.raises(ConcurrentChange) as refused:
        here.follow("alice", "bob")
    assert "try again" in str(refused.value)
    assert len(seen) == CONFLICT_RETRIES
    assert event_count(here) == before + CONFLICT_RETRIES  # the other's changes only
    assert not there.get_user("alice").follows("bob")


def test_a_mention_resolves_once_its_user_registers_in_another_process(
    processes: tuple[ChirpApplication, ChirpApplication],
) -> None:
    here, there = processes
    first = here.get_post(here.post("alice", "hi @dave and @bob"))
    assert first.mentions == ["bob"]  # dave is not registered yet; bob is now cached

    there.register("Dave")
    later = here.get_post(here.post("alice", "hi @dave and @bob"))

    assert later.mentions == ["Dave", "bob"]


def test_an_author_registered_in_another_process_can_post_here(
    processes: tuple[ChirpApplication, ChirpApplication],
) -> None:
    here, there = processes
    with pytest.raises(UserNotFound):
        here.post("erin", "hello")
    there.register("Erin")

    post = here.get_post(here.post("erin", "hello"))

    assert isinstance(post, Tweet) and post.author == "Erin"

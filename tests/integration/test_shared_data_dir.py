"""Several processes on one data directory converge.

Each web process keeps its own in-memory feeds and follows the shared SQLite
event log; the catalog is shared, and a process that finds an event already
projected there by another moves on. Here a second, real OS process writes
while this one follows the log in the background.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings

DEADLINE_SECONDS = 10.0


def wait_until(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` until it holds or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def run_other_process(data_dir: Path, code: str) -> None:
    script = (
        textwrap.dedent(
            f"""
        from pathlib import Path
        from chirp.bootstrap import build_chirp
        from chirp.settings import Settings
        chirp = build_chirp(Settings(data_dir=Path({str(data_dir)!r})))
        chirp.sync()
        """
        )
        + textwrap.dedent(code)
        + "\nchirp.close()\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def home_texts(chirp: Chirp, username: str) -> list[str]:
    return [item.text for item in chirp.queries.home_timeline(username).items]


def test_a_post_made_by_another_process_reaches_this_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    here = build_chirp(Settings(data_dir=data_dir))
    try:
        here.register("alice")
        here.register("bob")
        here.follow("bob", "alice")
        here.start_following(poll_interval=0.02)

        run_other_process(data_dir, 'chirp.post("alice", "from the other process #shared")')

        assert wait_until(lambda: home_texts(here, "bob") == ["from the other process #shared"])
        assert [i.text for i in here.queries.hashtag("shared").items] == [
            "from the other process #shared"
        ]
        # And this process's own writes keep working on the shared catalog.
        here.post("bob", "reply from here")
        assert home_texts(here, "bob")[0] == "reply from here"
    finally:
        here.close()


def test_two_instances_sharing_the_catalog_agree(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = build_chirp(Settings(data_dir=data_dir))
    second = build_chirp(Settings(data_dir=data_dir))
    try:
        first.register("alice")
        second.sync()
        second.register("bob")  # projects alice's events too, already in the catalog
        second.follow("bob", "alice")
        first.post("alice", "hello bob")
        second.sync()
        first.sync()
        assert home_texts(second, "bob") == home_texts(first, "bob") == ["hello bob"]
        assert second.queries.user("alice").followers_count == 1
    finally:
        first.close()
        second.close()


def test_losing_the_race_to_another_process_is_harmless(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = build_chirp(Settings(data_dir=data_dir), read_own_writes=False)
    second = build_chirp(Settings(data_dir=data_dir), read_own_writes=False)
    try:
        first.commands.register("alice")
        first.commands.post("alice", "one")
        first.commands.post("alice", "two")
        projector = second.catalog_follower.projector
        original = projector.process

        def other_process_gets_there_first(event: object, tracking: object) -> None:
            first.catalog_follower.catch_up()  # projects every event first
            original(event, tracking)  # type: ignore[arg-type]

        projector.process = other_process_gets_there_first  # type: ignore[method-assign]
        assert second.catalog_follower.catch_up() == 0
        assert second.catalog_follower.position == first.catalog_follower.position == 3
        assert second.queries.user("alice").posts_count == 2
    finally:
        first.close()
        second.close()

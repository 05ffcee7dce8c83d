"""The ``chirp`` command: replay reports events/s, bad input exits non-zero with a message."""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chirp.bootstrap import build_chirp
from chirp.cli import main
from chirp.settings import Settings
from domain.tweet import Tweet


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHIRP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path / "data"


def test_replay_rebuilds_every_event_and_prints_events_per_second(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chirp = build_chirp(Settings(data_dir=data_dir))
    chirp.register("alice")
    chirp.register("bob")
    chirp.follow("bob", "alice")
    chirp.post("alice", "hello #chirp")
    chirp.close()

    assert main(["replay", "--quiet"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"replayed (\d+) events in [\d.]+ s: ([\d,]+) events/s", out)
    assert match is not None, out
    assert int(match.group(1)) == 4


@pytest.mark.parametrize("way", [[], ["--one-by-one"]])
def test_load_workload_applies_each_op(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], way: list[str]
) -> None:
    workload = tmp_path / "workload.jsonl"
    ops = [
        {"op": "register", "username": "christopherj12345"},
        {"op": "register", "username": "mary1"},
        {"op": "follow", "follower": "mary1", "followee": "christopherj12345"},
        {"op": "post", "username": "christopherj12345", "text": "hi @mary1 #x",
         "at": "2025-01-01T10:00:00.000Z"},
        {"op": "post", "username": "mary1", "text": "yo @christopherj12345",
         "at": "2025-01-01T10:00:01.000Z"},
        {"op": "delete", "username": "christopherj12345", "post_index": 0},
    ]  # fmt: skip
    workload.write_text("".join(json.dumps(op) + "\n" for op in ops))
    assert main(["load-workload", "--quiet", *way, str(workload)]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts == {"register": 2, "follow": 1, "post": 2, "delete": 1}

    chirp = build_chirp(Settings(data_dir=data_dir))
    chirp.sync()
    # The long name is shortened the same way in registrations and mentions.
    [item] = chirp.queries.home_timeline("mary1").items
    assert item.text == "yo @christophe12345"
    assert [e.text for e in item.entities if e.kind == "mention"] == ["christophe12345"]
    chirp.close()


def test_a_missing_workload_file_is_a_message_and_exit_2(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["load-workload", str(tmp_path / "nope.jsonl")]) == 2
    assert "no workload file" in capsys.readouterr().err


def test_a_malformed_workload_line_names_the_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = tmp_path / "bad.jsonl"
    workload.write_text('{"op": "register", "username": "ann1"}\n{"op": "follow"\n')
    assert main(["load-workload", "--quiet", str(workload)]) == 2
    assert "line 2" in capsys.readouterr().err


def test_a_bad_setting_is_a_message_and_exit_2(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    assert main(["demo"]) == 2
    assert "DATABASE_URL" in capsys.readouterr().err


def test_replay_with_redis_out_of_reach_says_so_in_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("FEED_PROVIDER", "redis")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    assert main(["replay", "--yes", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("chirp: Redis is unavailable") and err.count("\n") == 1, err


def store_an_event_no_feed_projection_can_apply(data_dir: Path) -> int:
    """A post event mentioning a name no feed id can hold (as a bug could
    write one), after alice's registration; returns its position in the log."""
    chirp = build_chirp(Settings(data_dir=data_dir))
    chirp.register("alice")
    mention = {"kind": "mention", "text": "no such name!", "start": 0, "end": 4}
    broken = Tweet(author="alice", text="@bob", posted_at=datetime.now(UTC), entities=[mention])
    chirp.commands.save(broken)
    position = chirp.commands.recorder.max_notification_id() or 0
    chirp.close()
    return position


def test_replay_stopped_by_an_event_names_it_and_exits_1(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    position = store_an_event_no_feed_projection_can_apply(data_dir)
    assert main(["replay", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"chirp: replay stopped at event {position} (chirp:TweetPosted)"), err
    assert err.count("\n") == 1, err


def test_status_says_where_each_projection_is(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chirp = build_chirp(Settings(data_dir=data_dir))
    chirp.register("alice")
    chirp.register("bob")
    chirp.sync()
    chirp.close()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "catalog: at event 2 of 2, up to date" in out
    assert "feeds: in memory, in each web process" in out


def test_status_names_the_event_a_projection_waits_on_and_exits_1_when_late(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chirp = build_chirp(Settings(data_dir=data_dir))
    chirp.register("alice")
    chirp.sync()
    chirp.register("bob")  # stored, not projected: no process runs the catalog now
    chirp.close()
    assert main(["status"]) == 0  # stored a moment ago: not late yet
    assert main(["status", "--max-lag", "0"]) == 1
    out = capsys.readouterr().out
    waiting = "catalog: at event 1 of 2, 1 behind; next: event 2 (chirp:UserRegistered), stored"
    assert waiting in out
    assert "more than 0 s behind" in out

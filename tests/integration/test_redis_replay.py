"""``chirp replay`` with Redis feeds: it empties the namespace and rebuilds
every feed in place, from the event log (SQLite here), and asks first."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from adapters.redis.tracking import RedisTrackingRecorder
from chirp.bootstrap import build_chirp
from chirp.cli import main
from chirp.settings import Settings
from tests.services import require_redis

pytestmark = pytest.mark.redis


@pytest.fixture
def namespace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """The environment of a Chirp on Redis feeds, in a namespace of its own."""
    name = f"replay-{uuid.uuid4().hex}"
    monkeypatch.setenv("CHIRP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("FEED_PROVIDER", "redis")
    monkeypatch.setenv("REDIS_URL", require_redis())
    monkeypatch.setenv("CHIRP_REDIS_NAMESPACE", name)
    yield name
    client = redis.Redis.from_url(require_redis())
    for key in client.scan_iter(match=f"{name}:*"):
        client.delete(key)
    client.close()


def test_replay_rebuilds_the_redis_feeds_in_place(
    namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.Redis.from_url(require_redis())
    chirp = build_chirp(Settings.from_env())
    try:
        for name in ("alice", "bob"):
            chirp.register(name)
        chirp.follow("bob", "alice")
        posts = [chirp.post("alice", f"post {n} #replay @bob") for n in range(3)]
        chirp.delete_post(posts[1], by="alice")
        expected = [posts[2], posts[0]]
        assert [item.post_id for item in chirp.queries.home_timeline("bob").items] == expected
        for key in client.scan_iter(match=f"{namespace}:{{timeline:bob}}:*"):
            client.delete(key)  # bob's timeline is lost
        assert chirp.queries.home_timeline("bob").items == []

        keys = sorted(client.scan_iter(match=f"{namespace}:*"))
        assert main(["replay", "--quiet"]) == 2  # it asks first
        assert "run `chirp replay --yes` to go ahead" in capsys.readouterr().err
        assert sorted(client.scan_iter(match=f"{namespace}:*")) == keys

        assert main(["replay", "--yes", "--quiet"]) == 0
        out = capsys.readouterr().out
        assert re.search(rf"emptied '{namespace}': \d+ keys", out), out
        events = chirp.commands.recorder.max_notification_id()
        assert f"rebuilt the feeds: projected {events} events" in out
        assert RedisTrackingRecorder(client, namespace).max_tracking_id("chirp") == events
        assert [item.post_id for item in chirp.queries.home_timeline("bob").items] == expected
        assert [item.post_id for item in chirp.queries.mentions("bob").items] == expected

        # The web process goes on projecting from the rebuilt position.
        later = chirp.post("alice", "after the rebuild")
        assert [item.post_id for item in chirp.queries.home_timeline("bob").items] == [
            later,
            *expected,
        ]
    finally:
        chirp.close()
        client.close()

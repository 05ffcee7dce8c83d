"""The Redis feed provider on a real Redis Cluster (three masters started for
the session, tests/redis_cluster.py) through ``redis.cluster.RedisCluster``.

The feed provider contract (the production cap, caps of 3 on every group,
and hybrid fan-out at caps of 3) and the feed model state machine (caps of 3,
and hybrid) run as they do on the single server (as many examples: the
cluster is private and small; the whole module takes about 50 s); then
what only a cluster shows: a namespace spans every node and ``clear`` finds
it on each, every node takes the listpack setting, the scripts come back
after a node forgets them, every key a script touches is one it declared,
a cluster out of reach makes the feeds unavailable (not broken), and the
projector's position is kept there too, with each primary's newest
replication checkpoints beside it, and a catch-up cannot carry it forward
once moved back; pipelined script calls go straight to their keys' node;
on a cluster of its own with replicas, a replica
promoted without its primary's last tombstone makes the catalog cache
forget, and one promoted without the last feed writes gets them projected
again (the dead primary being the node the URL names); on one without
replicas, a primary restarted empty gets every feed projected again; and
the wiring: feed workers project onto the cluster from a queue on a
single server (``REDIS_BROKER_URL``), ``REDIS_CLUSTER``
builds the feeds on a cluster client (and Chirp built that way serves its
pages), and a ``REDIS_URL`` of the other kind of server is a
ConfigurationError.

Each test works in namespaces of its own, cleared when it ends. Without
``redis-server`` on PATH the tests skip (fail under CHIRP_REQUIRE_SERVICES=1
or CI=true).
"""

from __future__ import annotations

import itertools
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import redis
from eventsourcing.persistence import IntegrityError, Tracking
from redis.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.redis import RedisFeedProvider, shard_history
from adapters.redis.catalog_cache import RedisCatalogCache
from adapters.redis.cluster import cluster_client
from adapters.redis.tracking import RedisTrackingRecorder
from application.catalog import ShownPost, UserView
from application.commands import ChirpApplication
from application.feed_names import HASHTAG, MENTIONS, TIMELINE, USER
from application.feeds import FeedId, FeedUnavailableError, Follow
from application.service import Chirp
from chirp.bootstrap import build_chirp, build_feed_provider
from chirp.settings import ConfigurationError, Settings
from tests.integration.test_redis_catalog_cache import AT
from tests.integration.test_redis_catalog_cache import post as post_view
from tests.integration.test_redis_feed_model import LOW_CAP, machine_for
from tests.integration.test_redis_feed_provider import (
    ALL_GROUPS,
    RedisContract,
    key,
    post,
    read_all,
)
from tests.redis_cluster import RedisCluster, start_cluster
from tests.services import require_redis, require_redis_server
from tests.workers import running_workers

T = TypeVar("T")

pytestmark = pytest.mark.redis


def node_clients(cluster: RedisCluster) -> list[redis.Redis]:
    """A plain client of each node, to look at one node's keys and settings."""
    return [redis.Redis(host="127.0.0.1", port=port) for port in cluster.ports]


# -- the contract ---------------------------------------------------------------


class ClusterContract(RedisContract):
    """The contract on the test cluster, through a RedisCluster client."""

    property_max_examples = 30

    @pytest.fixture(autouse=True)
    def _redis(self, redis_cluster_client: ClusterClient) -> Iterator[None]:
        self.client = redis_cluster_client  # type: ignore[assignment]
        self.providers: list[RedisFeedProvider] = []
        yield
        for provider in self.providers:
            provider.clear()


class TestRedisClusterFeedProvider(ClusterContract):
    pass


class TestRedisClusterFeedProviderCappedAtThree(ClusterContract):
    """Every group capped at 3: nearly every read merges across slots."""

    timeline_cap = 3
    capped_groups = ALL_GROUPS


class TestRedisClusterFeedProviderHybridCappedAtThree(ClusterContract):
    """Hybrid feeds (threshold 0) at caps of 3: reads merge the hybrid
    feeds' deliveries, which live in other slots, on the client."""

    timeline_cap = 3
    capped_groups = ALL_GROUPS
    celebrity_threshold = 0


# -- the model ------------------------------------------------------------------

# The session's cluster client, set for each model run by _OnCluster's fixture
# (the machines are built at import, before any fixture runs).
_cluster_client: list[ClusterClient] = []


def _current_cluster_client() -> ClusterClient:
    return _cluster_client[-1]


class _OnCluster:
    @pytest.fixture(autouse=True)
    def _cluster(self, redis_cluster_client: ClusterClient) -> Iterator[None]:
        _cluster_client.append(redis_cluster_client)
        yield
        _cluster_client.pop()


_ALL_MODEL_GROUPS = frozenset({TIMELINE, USER, MENTIONS, HASHTAG})
ClusterMachine = machine_for(
    LOW_CAP, _ALL_MODEL_GROUPS, client=_current_cluster_client, max_examples=25
)
ClusterHybridMachine = machine_for(
    LOW_CAP,
    _ALL_MODEL_GROUPS,
    celebrity_threshold=1,
    client=_current_cluster_client,
    max_examples=25,
)


class TestRedisClusterChirpFeeds(_OnCluster, ClusterMachine.TestCase):  # type: ignore[name-defined,misc]
    pass


class TestRedisClusterChirpFeedsHybrid(_OnCluster, ClusterHybridMachine.TestCase):  # type: ignore[name-defined,misc]
    pass


# -- what only a cluster shows --------------------------------------------------


@pytest.fixture
def make(redis_cluster_client: ClusterClient) -> Iterator[Callable[..., RedisFeedProvider]]:
    made: list[RedisFeedProvider] = []

    def make(**options: Any) -> RedisFeedProvider:
        provider = RedisFeedProvider(
            redis_cluster_client,
            namespace=f"test-{uuid.uuid4().hex}",
            **options,
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.clear()


def namespace_keys(nodes: list[redis.Redis], namespace: str) -> list[int]:
    """How many keys of ``namespace`` each node holds."""
    return [len(list(node.scan_iter(match=f"{namespace}:*", count=1000))) for node in nodes]


def test_a_namespace_spans_every_node_and_clear_removes_it_from_each(
    make: Callable[..., RedisFeedProvider], redis_cluster: RedisCluster
) -> None:
    provider, other = make(), make()
    author = FeedId("user", "author")
    readers = [FeedId("timeline", f"r{n}") for n in range(30)]
    for feeds in (provider, other):
        feeds.follow_many([Follow(reader, author) for reader in readers])
        for n in range(5):
            feeds.add_activity(author, post(author, n))
    nodes = node_clients(redis_cluster)
    try:
        held = namespace_keys(nodes, provider.namespace)
        assert all(count > 0 for count in held), held  # so clear must visit every node
        assert provider.clear() == sum(held)
        assert namespace_keys(nodes, provider.namespace) == [0, 0, 0]
        assert [a.foreign_id for a in other.read(readers[-1])] == [
            post(author, n).foreign_id for n in reversed(range(5))
        ]
    finally:
        for node in nodes:
            node.close()


def test_every_node_takes_the_listpack_setting(
    make: Callable[..., RedisFeedProvider], redis_cluster: RedisCluster
) -> None:
    """Timelines live on every node, so each needs zset-max-listpack-entries
    raised to the cap (redis-py sends CONFIG SET to one node only)."""
    nodes = node_clients(redis_cluster)
    try:
        for node in nodes:
            node.config_set("zset-max-listpack-entries", 128)  # the server's default
        provider = make(timeline_cap=200)
        assert provider.listpack_configured
        author = FeedId("user", "author")
        readers = [FeedId("timeline", f"r{n}") for n in range(12)]
        provider.follow_many([Follow(reader, author) for reader in readers])
        for n in range(150):  # past the default of 128
            provider.add_activity(author, post(author, n))
        encodings = {}
        for reader in readers:
            tl = key(provider, reader, "tl")
            node = redis_cluster_node(nodes, redis_cluster, tl)
            assert node.zcard(tl) == 150
            encodings[redis_cluster.ports[nodes.index(node)]] = node.object("encoding", tl)
        assert len(encodings) == 3, encodings  # the readers' caches are on every node
        assert set(encodings.values()) == {b"listpack"}, encodings
    finally:
        for node in nodes:
            node.close()


def redis_cluster_node(nodes: list[redis.Redis], cluster: RedisCluster, name: str) -> redis.Redis:
    """The node that holds key ``name``."""
    client: ClusterClient = cluster_client(cluster.url)
    try:
        port = client.get_node_from_key(name).port  # type: ignore[no-untyped-call]
    finally:
        client.close()
    return nodes[cluster.ports.index(int(port))]


def test_the_scripts_come_back_after_every_node_forgets_them(
    make: Callable[..., RedisFeedProvider], redis_cluster: RedisCluster
) -> None:
    provider = make(timeline_cap=3, celebrity_threshold=5)
    author, star = FeedId("user", "author"), FeedId("user", "star")
    readers = [FeedId("timeline", f"r{n}") for n in range(8)]
    nodes = node_clients(redis_cluster)

    def forget() -> None:
        for node in nodes:
            node.script_flush()

    try:
        provider.follow_many([Follow(reader, author) for reader in readers[:3]])
        forget()
        provider.follow_many([Follow(reader, star) for reader in readers])
        expected = []
        for n in range(4):
            forget()
            expected.append(provider.add_activity(author, post(author, n)))
            expected.append(provider.add_activity(star, post(star, n, seconds=n + 0.5)))
        forget()
        assert provider.fans_out_on_read(star)
        forget()
        assert [a.id for a in read_all(provider, readers[0], 2)] == expected[::-1]
        forget()
        provider.unfollow(readers[0], star)
        forget()
        provider.remove_activity(author, post(author, 3).foreign_id)
        assert [a.id for a in provider.read(readers[0])] == expected[-4::-2]
    finally:
        for node in nodes:
            node.close()


def test_the_projectors_position_is_kept_on_the_cluster(
    redis_cluster_client: ClusterClient, redis_cluster: RedisCluster
) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    recorder = RedisTrackingRecorder(redis_cluster_client, namespace)
    nodes = node_clients(redis_cluster)
    try:
        assert recorder.max_tracking_id("chirp") is None
        recorder.insert_tracking(Tracking("chirp", 3))
        for node in nodes:
            node.script_flush()
        recorder.insert_tracking(Tracking("chirp", 7))
        with pytest.raises(IntegrityError):
            recorder.insert_tracking(Tracking("chirp", 5))
        assert recorder.max_tracking_id("chirp") == 7
    finally:
        for k in redis_cluster_client.scan_iter(match=f"{namespace}:*"):
            redis_cluster_client.unlink(k)
        for node in nodes:
            node.close()


def test_each_primary_keeps_the_newest_checkpoints_of_its_history_beside_the_position(
    redis_cluster_client: ClusterClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every check of the position (here: at every look, three checkpoints
    kept) records, for each primary, the position with its
    replication offset; older checkpoints go. All of it in the position's
    slot, so one script or pipeline reaches it, and in the namespace."""
    monkeypatch.setattr(shard_history, "CHECK_INTERVAL_SECONDS", 0.0)
    monkeypatch.setattr(shard_history, "CHECKPOINTS_KEPT", 3)
    namespace = f"test-{uuid.uuid4().hex}"
    recorder = RedisTrackingRecorder(redis_cluster_client, namespace)
    client = redis_cluster_client
    try:
        for position in range(1, 7):
            recorder.insert_tracking(Tracking("chirp", position))
            assert recorder.max_tracking_id("chirp") == position
        checker = shard_history.ShardHistory(client, f"{namespace}:tracking:chirp")
        primaries = checker.primaries()
        assert len(primaries) == 3
        nodes = {_text(k): _text(v) for k, v in client.hgetall(checker.nodes_key).items()}
        assert nodes == {p.node_id: p.replication_id for p in primaries}
        for primary in primaries:
            history = checker.history_key(primary.replication_id)
            kept = cast(list[tuple[bytes, float]], client.zrange(history, 0, -1, withscores=True))
            assert [int(member) for member, _ in kept] == [4, 5, 6]
            assert all(offset <= primary.offset for _, offset in kept)
        position_slot = _slot(checker.position_key)
        assert {_slot(checker.nodes_key), _slot(history)} == {position_slot}
    finally:
        RedisFeedProvider(client, namespace).clear()
    assert list(client.scan_iter(match=f"{namespace}:*")) == []


def test_between_checks_a_look_at_the_position_is_one_command(
    redis_cluster_client: ClusterClient,
    redis_cluster: RedisCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The primaries are checked once per interval (an hour here), not at
    every look: the other looks only GET the position."""
    monkeypatch.setattr(shard_history, "CHECK_INTERVAL_SECONDS", 3600.0)
    namespace = f"test-{uuid.uuid4().hex}"
    recorder = RedisTrackingRecorder(redis_cluster_client, namespace)
    nodes = node_clients(redis_cluster)
    try:
        recorder.insert_tracking(Tracking("chirp", 1))
        for node in nodes:
            node.config_resetstat()
        for _ in range(5):
            assert recorder.max_tracking_id("chirp") == 1
        stats = [node.info("commandstats") for node in nodes]

        def calls(command: str) -> int:
            return sum(s.get(f"cmdstat_{command}", {}).get("calls", 0) for s in stats)

        # One check: the cluster's nodes, each primary's INFO and mark (a
        # GET each); then a GET of the position per look.
        assert (calls("cluster|nodes"), calls("info"), calls("get")) == (1, 3, 3 + 5)
    finally:
        RedisFeedProvider(redis_cluster_client, namespace).clear()
        for node in nodes:
            node.close()


def test_a_catch_up_that_read_the_position_before_it_was_moved_back_cannot_carry_it_forward(
    redis_cluster_client: ClusterClient,
) -> None:
    """Two processes share the position. The second reads it (its catch-up
    starts at 5); the first finds a shard that lost the feed writes past 2
    and moves it back. The second's next record fails instead of carrying
    the position past the lost writes; read again, the position says 2."""
    namespace = f"test-{uuid.uuid4().hex}"
    first = RedisTrackingRecorder(redis_cluster_client, namespace)
    second = RedisTrackingRecorder(redis_cluster_client, namespace)
    try:
        for position in range(1, 6):
            first.insert_tracking(Tracking("chirp", position))
        assert second.max_tracking_id("chirp") == 5
        moved_back = shard_history.ShardHistory(redis_cluster_client, f"{namespace}:tracking:chirp")
        assert moved_back.move_back(2)
        with pytest.raises(IntegrityError, match="moved back"):
            second.insert_tracking(Tracking("chirp", 6))
        assert second.max_tracking_id("chirp") == 2
        second.insert_tracking(Tracking("chirp", 3))
        assert first.max_tracking_id("chirp") == 3
        first.insert_tracking(Tracking("chirp", 4))  # the first read it again too
        assert not moved_back.move_back(5)  # never forward
        assert second.max_tracking_id("chirp") == 4
    finally:
        RedisFeedProvider(redis_cluster_client, namespace).clear()


# -- every key a script touches is declared --------------------------------------

_MONITOR_LINE = re.compile(rb"^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$", re.DOTALL)
_ESCAPED = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("a"): b"\a",
    ord("b"): b"\b",
    ord('"'): b'"',
    ord("\\"): b"\\",
}
# The scripts a cluster runs (fan_out, fan_out_range and departed are the single server's).
CLUSTER_SCRIPTS = {
    "own_add",
    "cache_add",
    "fan_out_declared",
    "cache_drop",
    "own_remove",
    "drop_to",
    "exclude",
    "follow_t",
    "follow_s",
    "unfollow_t",
    "unfollow_s",
    "read",
    "candidates",
}


def monitor_args(text: bytes) -> list[bytes]:
    """The arguments of a MONITOR line: quoted, escaped as Redis's sdscatrepr does."""
    args: list[bytes] = []
    i = 0
    while i < len(text):
        if text[i] == ord(" "):
            i += 1
            continue
        assert text[i] == ord('"'), text
        i += 1
        arg = bytearray()
        while text[i] != ord('"'):
            if text[i] != ord("\\"):
                arg.append(text[i])
                i += 1
            elif text[i + 1] == ord("x"):
                arg.append(int(text[i + 2 : i + 4], 16))
                i += 4
            else:
                arg += _ESCAPED[text[i + 1]]
                i += 2
        args.append(bytes(arg))
        i += 1
    return args


Lines = list[tuple[str, list[bytes]]]  # (client, arguments) of each MONITOR line


class Monitors:
    """MONITOR on every node of the cluster: what each node ran, scripts'
    own commands included (``lua`` as their client)."""

    def __init__(self, cluster: RedisCluster) -> None:
        self.ports = cluster.ports
        self.connections: list[redis.Connection] = []
        for port in self.ports:
            connection = redis.Connection(host="127.0.0.1", port=port, socket_timeout=10)  # type: ignore[no-untyped-call]
            connection.connect()  # type: ignore[no-untyped-call]
            connection.send_command("MONITOR")  # type: ignore[no-untyped-call]
            assert connection.read_response() == b"OK"
            self.connections.append(connection)

    def lines(self, nodes: list[redis.Redis]) -> list[Lines]:
        """Each node's lines so far, as (client, arguments); stops monitoring.
        The server buffers them meanwhile; an ECHO of a marker ends each."""
        marker = uuid.uuid4().hex.encode()
        for node in nodes:
            node.echo(marker)
        found: list[Lines] = []
        for connection in self.connections:
            node_lines: Lines = []
            while True:
                line = connection.read_response()
                matched = _MONITOR_LINE.match(line)
                assert matched is not None, line
                args = monitor_args(matched[2])
                if args == [b"ECHO", marker]:
                    break
                node_lines.append((matched[1].decode(), args))
            connection.disconnect()  # type: ignore[no-untyped-call]
            found.append(node_lines)
        return found


def undeclared_keys(
    provider: RedisFeedProvider, nodes: list[redis.Redis], lines: list[Lines]
) -> tuple[set[str], list[tuple[str, bytes, bytes]]]:
    """The scripts run, and every (script, command, key) where a script's
    command touched a key not in its KEYS (``COMMAND GETKEYS`` names them)."""
    names = {sha.encode(): name for name, sha in provider._shas.items()}
    seen: set[str] = set()
    undeclared: list[tuple[str, bytes, bytes]] = []
    for node, node_lines in zip(nodes, lines, strict=True):
        script, declared = "", set[bytes]()
        for client, args in node_lines:
            if client != "lua":
                script = names.get(args[1], "?") if args[0].upper() == b"EVALSHA" else ""
                if script:
                    seen.add(script)
                    declared = set(args[3 : 3 + int(args[2])])
                continue
            assert script, f"a script command after no script: {args}"
            try:
                touched = node.command_getkeys(*args)
            except redis.ResponseError:  # a command without keys
                touched = []
            keys = [k.encode() if isinstance(k, str) else k for k in touched]
            undeclared += [(script, args[0], k) for k in keys if k not in declared]
    return seen, undeclared


def test_every_key_a_script_touches_is_one_it_declared(
    make: Callable[..., RedisFeedProvider], redis_cluster: RedisCluster
) -> None:
    """Redis Cluster routes a script by its KEYS, and Redis requires that a
    script touch no other key (it only refuses one of another slot today).
    Every script the cluster runs, at caps of 3 so caches fill and evict."""
    provider = make(timeline_cap=3, capped_groups=ALL_GROUPS)
    hybrid = make(timeline_cap=3, capped_groups=ALL_GROUPS, celebrity_threshold=1)
    nodes = node_clients(redis_cluster)
    monitors = Monitors(redis_cluster)
    try:
        author, other, tag = FeedId("user", "a"), FeedId("user", "b"), FeedId("hashtag", "t")
        readers = [FeedId("timeline", f"r{n}") for n in range(6)]
        for feeds in (provider, hybrid):
            feeds.follow_many([Follow(reader, author) for reader in readers])
            feeds.follow_many([Follow(readers[0], other), Follow(readers[0], tag)])
            for n in range(5):
                feeds.add_activity(author, post(author, n, to=(tag,)))
            feeds.add_activity(other, post(other, 10))
            feeds.follow(readers[5], other)
            read_all(feeds, readers[0], 2)
            feeds.unfollow(readers[1], author)
            feeds.unfollow(readers[2], author, keep_history=True)
            feeds.remove_activity(readers[3], post(author, 4).foreign_id)
            feeds.remove_activity(author, post(author, 3).foreign_id)
            stored = feeds.store_activity(author, post(author, 20))
            feeds.copy_to_followers(author, stored, readers)
            read_all(feeds, readers[4], 2)
        seen, undeclared = undeclared_keys(provider, nodes, monitors.lines(nodes))
        assert undeclared == [], sorted({(script, command) for script, command, _ in undeclared})
        assert seen == CLUSTER_SCRIPTS
    finally:
        for node in nodes:
            node.close()


def test_a_cluster_out_of_reach_makes_the_feeds_unavailable_not_broken() -> None:
    """redis-py's cluster client raises its own RedisClusterException (not a
    RedisError) when no node answers: it must come out as FeedUnavailableError,
    which the web answers with its 503 page and the projector retries."""
    cluster = start_cluster(require_redis_server())  # its own: this test kills it
    try:
        client = cluster_client(cluster.url)
        provider = RedisFeedProvider(client, namespace="test-gone")
        recorder = RedisTrackingRecorder(client, "test-gone")
        reader, author = FeedId("timeline", "reader"), FeedId("user", "author")
        provider.follow(reader, author)
        recorder.insert_tracking(Tracking("chirp", 1))
        for process in cluster.processes:
            process.kill()
            process.wait()
        calls: list[Callable[[], object]] = [
            lambda: provider.read(reader),
            lambda: provider.add_activity(author, post(author, 1)),
            lambda: provider.unfollow(reader, author),
            provider.clear,
            lambda: recorder.insert_tracking(Tracking("chirp", 2)),
            lambda: recorder.max_tracking_id("chirp"),
        ]
        for call in calls:
            with pytest.raises(FeedUnavailableError, match="unavailable"):
                call()
        client.close()
    finally:
        cluster.stop()


# -- wiring ---------------------------------------------------------------------


def test_redis_cluster_true_wires_the_feeds_and_their_position_to_the_cluster(
    redis_cluster: RedisCluster,
) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    settings = Settings.from_env(
        {
            "FEED_PROVIDER": "redis",
            "REDIS_CLUSTER": "true",
            "REDIS_URL": redis_cluster.url,
            "CHIRP_REDIS_NAMESPACE": namespace,
        }
    )
    provider, tracking = build_feed_provider(settings)
    assert isinstance(provider, RedisFeedProvider) and isinstance(tracking, RedisTrackingRecorder)
    assert isinstance(provider.client, ClusterClient) and tracking.client is provider.client
    try:
        reader, author = FeedId("timeline", "reader"), FeedId("user", "author")
        provider.follow(reader, author)
        aid = provider.add_activity(author, post(author, 1))
        assert [a.id for a in provider.read(reader)] == [aid]
        tracking.insert_tracking(Tracking("chirp", 4))
        assert tracking.max_tracking_id("chirp") == 4
    finally:
        provider.clear()
        provider.client.close()


def test_a_redis_url_of_the_other_kind_of_server_is_a_configuration_error(
    redis_cluster: RedisCluster,
) -> None:
    single = require_redis()
    for environ, message in [
        ({"REDIS_URL": redis_cluster.url}, "is a Redis Cluster node: set REDIS_CLUSTER=true"),
        ({"REDIS_URL": single, "REDIS_CLUSTER": "true"}, "is not a Redis Cluster node"),
    ]:
        settings = Settings.from_env({"FEED_PROVIDER": "redis", **environ})
        with pytest.raises(ConfigurationError, match=message):
            build_feed_provider(settings)


def test_a_cluster_out_of_reach_at_start_makes_the_feeds_unavailable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings.from_env(
        {"FEED_PROVIDER": "redis", "REDIS_CLUSTER": "1", "REDIS_URL": f"redis://127.0.0.1:{port}"}
    )
    with pytest.raises(FeedUnavailableError, match="Redis Cluster is unavailable"):
        build_feed_provider(settings)


def test_chirp_wired_with_redis_cluster_true_serves_its_pages_from_the_cluster(
    redis_cluster: RedisCluster, redis_cluster_client: ClusterClient
) -> None:
    """The whole application as the wiring builds it for a cluster: commands,
    projection and pages (feeds, the projector's position, and whatever else
    the wiring keeps in the same Redis) through the cluster client."""
    namespace = f"test-{uuid.uuid4().hex}"
    settings = Settings.from_env(
        {
            "FEED_PROVIDER": "redis",
            "REDIS_CLUSTER": "true",
            "REDIS_URL": redis_cluster.url,
            "CHIRP_REDIS_NAMESPACE": namespace,
            "DATABASE_URL": "memory:",
        }
    )
    chirp = build_chirp(settings)
    try:
        for name in ("alice", "bob", "carol"):
            chirp.register(name)
        chirp.follow("bob", "alice")
        chirp.follow("bob", "carol")
        posts = [chirp.post("alice" if n % 2 else "carol", f"hello {n} #chirp") for n in range(30)]
        chirp.delete_post(posts[-1], by="alice")
        for _ in range(2):  # cold, then warm
            page = chirp.queries.home_timeline("bob")
            assert [item.post_id for item in page.items] == posts[-2:-27:-1]
    finally:
        chirp.close()
        RedisFeedProvider(redis_cluster_client, namespace).clear()


def test_pipelined_script_calls_go_straight_to_their_keys_node(
    redis_cluster: RedisCluster,
) -> None:
    """A fan-out and pages pipeline script calls; the cluster client reads
    each call's keys from the call. redis-py's own cluster pipeline asks the
    node the URL names for them (``COMMAND GETKEYS``), a round trip per call."""
    chirp, provider, _ = _chirp_on(redis_cluster, away_from=-1)
    nodes = node_clients(redis_cluster)
    try:
        chirp.register("alice")
        readers = [f"reader{n}" for n in range(40)]
        for reader in readers:
            chirp.register(reader)
            chirp.follow(reader, "alice")
        for node in nodes:
            node.config_resetstat()
        posted = chirp.post("alice", "hello #cluster")
        for reader in readers[:5]:
            assert _home(chirp, reader) == [posted]
        calls = [node.info("commandstats") for node in nodes]
        assert sum(stats.get("cmdstat_evalsha", {}).get("calls", 0) for stats in calls) >= 40
        assert all("cmdstat_command|getkeys" not in stats for stats in calls)
    finally:
        provider.clear()
        chirp.close()
        for node in nodes:
            node.close()


def test_feed_workers_project_onto_the_cluster_from_a_queue_on_a_single_server(
    redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    """The documented way to run workers with a cluster: feeds and their
    position on the cluster, Dramatiq's queue and the workers' lock on the
    single server ``REDIS_BROKER_URL`` names (its broker has no cluster
    support). A post fans out in chunks through the queue onto the cluster."""
    namespace = f"test-{uuid.uuid4().hex}"
    single = redis.Redis.from_url(require_redis())
    settings = Settings(
        data_dir=tmp_path,
        feed_provider="redis",
        redis_url=redis_cluster.url,
        redis_cluster=True,
        redis_broker_url=require_redis(),
        redis_namespace=namespace,
        projection="dramatiq",
        fan_out_chunk=2,
    )
    try:
        with running_workers(settings) as running:
            web = running.web
            web.register("alice")
            followers = [f"reader{n}" for n in range(5)]
            for name in followers:
                web.register(name)
                web.follow(name, "alice")
            hello = web.post("alice", "hello from the workers #cluster")
            running.join()
            for name in ["alice", *followers]:
                assert [item.post_id for item in web.queries.home_timeline(name).items] == [hello]
            position = running.worker_chirp.feed_follower.position
            assert position == web.commands.recorder.max_notification_id()
            assert isinstance(web.provider, RedisFeedProvider)
            assert isinstance(web.provider.client, ClusterClient)
        assert list(single.scan_iter(match=f"{namespace}:*")) == []  # no feed key there
        assert list(single.scan_iter(match=f"{namespace}-dramatiq:*"))  # the queue is
    finally:
        RedisFeedProvider(cluster_client(redis_cluster.url), namespace).clear()
        for key in single.scan_iter(match=f"{namespace}*"):
            single.delete(key)
        single.close()


# -- a failover -----------------------------------------------------------------


@pytest.fixture
def cluster_with_replicas() -> Iterator[RedisCluster]:
    """A cluster of its own, three masters with a replica each, for a test
    that kills one."""
    cluster = start_cluster(require_redis_server(), replicas=1)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_a_replica_promoted_without_the_latest_tombstone_makes_the_catalog_cache_forget(
    cluster_with_replicas: RedisCluster,
) -> None:
    """The primary holding the catalog cache's slot dies before its replica
    got a post's tombstone (replication is asynchronous), and the replica
    takes over. It still holds the post's view, so until the cache checks
    its server, a page shows the deleted post. The check sees the new
    primary's replication id and empties the cache but its tombstones: the
    catalog answers again."""
    cluster = cluster_with_replicas
    client = cluster_client(cluster.url)
    cache = RedisCatalogCache(InMemoryCatalog(), client, "failover")
    positions = itertools.count(1)

    def track() -> Tracking:
        return Tracking("chirp", next(positions))

    cache.add_user(UserView("alice", "Alice Liddell", "", AT), track())
    kept, doomed = post_view(), post_view(text="soon gone")
    cache.add_post(kept, track())
    cache.add_post(doomed, track())
    assert cache.forget_if_replaced() == 3  # the first look: two views, alice's name
    both = {
        kept.id: ShownPost(kept, "Alice Liddell"),
        doomed.id: ShownPost(doomed, "Alice Liddell"),
    }
    assert cache.shown_posts([kept.id, doomed.id]) == both  # and cached again

    slot = _slot(f"{cache.key_prefix}replid")
    primary_port = _owner(redis.Redis(host="127.0.0.1", port=cluster.ports[0]), slot)
    assert primary_port is not None
    replica_port = next(r for r, m in cluster.replica_of.items() if m == primary_port)
    primary = redis.Redis(host="127.0.0.1", port=primary_port)
    assert primary.execute_command("WAIT", 1, 5000) == 1  # type: ignore[no-untyped-call]
    replica = cluster.process(replica_port)
    replica.send_signal(signal.SIGSTOP)  # it stops reading: what follows stays on the primary
    try:
        assert primary.client_kill_filter(_type="replica") == 1
        cache.remove_post(doomed.id, track())
        cluster.process(primary_port).kill()
        cluster.process(primary_port).wait(timeout=10)
    finally:
        replica.send_signal(signal.SIGCONT)
    promoted = redis.Redis(host="127.0.0.1", port=replica_port)
    promoted.execute_command("CLUSTER", "FAILOVER", "TAKEOVER")  # type: ignore[no-untyped-call]
    live = [port for port in cluster.ports if port != primary_port]
    _wait_for(lambda: all(_owner(redis.Redis(port=p), slot) == replica_port for p in live))
    assert promoted.get(f"{cache.key_prefix}p:{doomed.id.hex}") not in (None, b"-")

    # A client that learnt the new primary shows the deleted post: the
    # tombstone was lost for real.
    other = cluster_client(f"redis://127.0.0.1:{replica_port}/0")
    other_cache = RedisCatalogCache(InMemoryCatalog(), other, "failover")
    assert other_cache.shown_posts([kept.id, doomed.id]) == both
    other.close()

    # The check comes first, through a client that still knows the old
    # primary: it finds the new one.
    assert cache.forget_if_replaced() == 3
    assert cache.shown_posts([kept.id, doomed.id]) == {kept.id: both[kept.id]}
    assert cache.forget_if_replaced() == 0
    client.close()


def _owner(node: redis.Redis, slot: int) -> int | None:
    """The port of the master serving ``slot``, as ``node`` sees the cluster."""
    try:
        ranges = node.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
    except redis.ConnectionError:
        return None
    finally:
        node.close()
    for first, last, master, *_ in ranges:
        if first <= slot <= last:
            return int(master[1])
    return None


def _wait_for(done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the cluster did not settle"
        time.sleep(0.05)


# -- a shard that lost feed writes the position says were made -----------------


def _chirp_on(cluster: RedisCluster, away_from: int) -> tuple[Chirp, RedisFeedProvider, str]:
    """Chirp wired to ``cluster`` (events in memory), in a namespace whose
    position is not on the primary at port ``away_from``; its feeds, and its
    position's key."""
    for _ in range(100):
        namespace = f"test-{uuid.uuid4().hex}"
        position_key = f"{namespace}:tracking:{ChirpApplication.name}"
        if _owner(redis.Redis(port=cluster.ports[0]), _slot(position_key)) != away_from:
            break
    settings = Settings.from_env(
        {
            "FEED_PROVIDER": "redis",
            "REDIS_CLUSTER": "true",
            "REDIS_URL": cluster.url,
            "CHIRP_REDIS_NAMESPACE": namespace,
            "DATABASE_URL": "memory:",
        }
    )
    chirp = build_chirp(settings)
    assert isinstance(chirp.provider, RedisFeedProvider)
    assert position_key == f"{namespace}:tracking:{chirp.commands.name}"
    return chirp, chirp.provider, position_key


def _reader_on(provider: RedisFeedProvider, cluster: RedisCluster, port: int) -> str:
    """A username whose home timeline lives on the primary at ``port``."""
    for n in itertools.count():
        name = f"reader{n}"
        timeline = key(provider, FeedId(TIMELINE, name), "tl")
        if _owner(redis.Redis(port=cluster.ports[0]), _slot(timeline)) == port:
            return name
    raise AssertionError("unreachable")


def _alice_and_a_follower_on(
    chirp: Chirp, provider: RedisFeedProvider, cluster: RedisCluster, port: int
) -> str:
    """Register alice and a follower of hers whose home timeline lives on the
    primary at ``port``; the follower's username."""
    chirp.register("alice")
    reader = _reader_on(provider, cluster, port)
    chirp.register(reader)
    chirp.follow(reader, "alice")
    return reader


def _slot(name: str) -> int:
    return key_slot(name.encode())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _home(chirp: Chirp, username: str) -> list[uuid.UUID]:
    """The post ids of ``username``'s first home page, once the cluster answers."""
    page = _once_the_cluster_answers(lambda: chirp.queries.home_timeline(username))
    return [item.post_id for item in page.items]


def _sync(chirp: Chirp) -> None:
    """Project every event, once the cluster answers again."""
    _once_the_cluster_answers(chirp.sync)


def _once_the_cluster_answers(action: Callable[[], T]) -> T:
    """``action``'s result, asked again while the cluster is unavailable
    (settling after a failover or a restart), for up to 30 s."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return action()
        except FeedUnavailableError as error:
            assert time.monotonic() < deadline, f"the cluster did not answer again: {error}"
            time.sleep(0.05)


@pytest.fixture
def cluster_of_its_own() -> Iterator[RedisCluster]:
    """A cluster of its own, three masters without replicas, for a test
    that restarts one."""
    cluster = start_cluster(require_redis_server())
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def check_at_every_look(monkeypatch: pytest.MonkeyPatch) -> None:
    """The primaries are checked at every look at the position, not once a
    second: a test then knows which catch-up notices a failover."""
    monkeypatch.setattr(shard_history, "CHECK_INTERVAL_SECONDS", 0.0)


@pytest.mark.usefixtures("check_at_every_look")
def test_a_replica_promoted_without_the_last_feed_writes_gets_them_projected_again(
    cluster_with_replicas: RedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """The primary holding a reader's timeline dies before its replica got
    the latest post's fan-out, and the replica takes over: the timeline
    lost the post, while the projector's position, on a shard that kept
    everything, says it was projected. The next catch-up sees that the new
    primary holds its old primary's history only up to before that write,
    goes back to the last checkpoint it holds, and projects the post again.
    The primary that dies is the node Chirp's ``REDIS_URL`` names, the
    cluster client's default node: pages and fan-outs go on without it."""
    cluster = cluster_with_replicas
    shard = cluster.ports[0]  # the node the URL names: the client's default node
    chirp, provider, position_key = _chirp_on(cluster, away_from=shard)
    try:
        reader = _alice_and_a_follower_on(chirp, provider, cluster, shard)
        kept = chirp.post("alice", "kept")
        chirp.sync()  # a look at the position: every primary's checkpoint is taken
        replica_port = next(r for r, m in cluster.replica_of.items() if m == shard)
        primary = redis.Redis(host="127.0.0.1", port=shard)
        assert primary.execute_command("WAIT", 1, 5000) == 1  # type: ignore[no-untyped-call]
        replica = cluster.process(replica_port)
        replica.send_signal(signal.SIGSTOP)
        try:
            assert primary.client_kill_filter(_type="replica") == 1
            lost = chirp.post("alice", "lost")  # its fan-out reaches the primary only
            assert _home(chirp, reader) == [lost, kept]
            cluster.process(shard).kill()
            cluster.process(shard).wait(timeout=10)
        finally:
            replica.send_signal(signal.SIGCONT)
        redis.Redis(port=replica_port).execute_command("CLUSTER", "FAILOVER", "TAKEOVER")  # type: ignore[no-untyped-call]
        live = [port for port in cluster.ports if port != shard]
        slot = _slot(position_key)
        _wait_for(lambda: all(_owner(redis.Redis(port=p), slot) is not None for p in live))

        assert _home(chirp, reader) == [kept]  # lost for real
        _sync(chirp)
        assert _home(chirp, reader) == [lost, kept]
        assert f"127.0.0.1:{replica_port}" in caplog.text
    finally:
        provider.clear()
        chirp.close()


@pytest.mark.usefixtures("check_at_every_look")
def test_a_primary_restarted_without_its_data_gets_every_feed_projected_again(
    cluster_of_its_own: RedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """A primary with no replica restarts empty (no persistence): every feed
    key on its slots is gone, while the position, on another node, is
    intact. The next catch-up sees a node it knew come back with a history
    it never saw, and the projection starts over from the first event."""
    cluster = cluster_of_its_own
    shard = cluster.ports[1]
    chirp, provider, _ = _chirp_on(cluster, away_from=shard)
    try:
        reader = _alice_and_a_follower_on(chirp, provider, cluster, shard)
        posts = [chirp.post("alice", f"hello {n}") for n in range(3)]
        assert _home(chirp, reader) == posts[::-1]
        position = chirp.feed_follower.position

        cluster.restart(shard)
        assert _home(chirp, reader) == []
        _sync(chirp)
        assert _home(chirp, reader) == posts[::-1]
        assert chirp.feed_follower.position == position
        assert "projecting again from 0" in caplog.text
    finally:
        provider.clear()
        chirp.close()


@pytest.mark.usefixtures("check_at_every_look")
def test_a_primary_restarted_from_its_snapshot_gets_what_came_after_projected_again(
    cluster_of_its_own: RedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """A primary restarts from the snapshot it saved (Redis gives it a new
    replication id): it lacks the feed writes made after the snapshot. The
    mark it holds says how far its feeds go, and the projection goes back
    there, not to the first event."""
    cluster = cluster_of_its_own
    shard = cluster.ports[1]
    chirp, provider, _ = _chirp_on(cluster, away_from=shard)
    try:
        reader = _alice_and_a_follower_on(chirp, provider, cluster, shard)
        before = [chirp.post("alice", f"before {n}") for n in range(2)]
        chirp.sync()  # a look at the position: the marks say where it is
        marked = chirp.feed_follower.position
        node = redis.Redis(port=shard)
        assert node.save()
        node.close()
        after = chirp.post("alice", "after")
        assert _home(chirp, reader) == [after, *before[::-1]]  # projected, past the snapshot
        cluster.restart(shard)  # from the snapshot: ``after`` is gone from it
        assert _home(chirp, reader) == before[::-1]
        _sync(chirp)
        assert _home(chirp, reader) == [after, *before[::-1]]
        assert f"projecting again from {marked}" in caplog.text
        assert marked > 0
    finally:
        provider.clear()
        chirp.close()

"""ShardHistory: on Redis Cluster, the position every shard still holds the feeds up to.

On a single server, or a replica set behind Sentinel, the feed projector's
position lives beside the feeds, so a failover that loses the last writes
loses the position's last moves with them, and the projector projects those
events again by itself. On a cluster the position is one key on one shard
while the feeds spread over all of them, and each shard fails over on its
own: a replica promoted without its primary's last writes loses part of some
feeds, while the position, on a shard that kept everything, still says they
were written.

Redis says how much a promoted replica kept: its ``INFO replication`` names
the replication history it continues (``master_replid2``, its old primary's
id) and the offset up to which it holds it (``second_repl_offset`` - 1). So
when the projector looks at its position (at most once a second per
process: :data:`CHECK_INTERVAL_SECONDS`), ShardHistory asks every primary
where its replication stands and keeps checkpoints beside the
position: "the feeds up to position p were in history R by offset O" (the
position is read first, so whatever it covers was written before the
offset). A primary that continues a known history with an unknown id of its
own has taken over: the newest checkpoint it holds is the position its
shard is good for, and the position goes back there (events are projected
again from it; feed writes are idempotent). A node seen before that now has
neither a known history nor a known previous one has restarted (Redis gives
a primary a new replication id at every start, from its snapshot or AOF
too): each check also leaves a mark on every primary, in a slot it serves,
saying the position it held the feeds up to then, and a restarted node holds
the mark of the data it loaded, or none (the position goes back to 0). A
node never seen (added to the cluster: its slots came with their keys, by
migration) is taken as it is.

A catch-up already running in another process, which read the position
before it moved back, cannot carry it forward past the lost writes again:
RedisTrackingRecorder records a thread's progress only from the position it
last saw.

What stays on the position's slot: ``<position key>:{<position key>}:nodes``
(node id -> the replication id last seen on it), one sorted set per history,
``...:history:<replication id>`` (position -> the lowest offset seen with
it), keeping the newest :data:`CHECKPOINTS_KEPT`. Each primary's mark,
``<position key>:{<tag>}:mark``, lives in the first slot it serves.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from redis.cluster import RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS as SLOTS
from redis.crc import key_slot

from application.feeds import FeedUnavailableError

logger = logging.getLogger(__name__)

# A process checks the primaries (and records checkpoints) at most this
# often; between checks a look at the position is one GET. A failover is
# noticed at the next check, which moves the position back past whatever
# was projected meanwhile too: that is projected again with the rest.
CHECK_INTERVAL_SECONDS = 1.0
# A promoted replica rarely lags by more than seconds, and a process records
# a checkpoint at most once a check (and only when the position moved): ten
# thousand of them reach back hours. A replica that lags further back than
# all of them makes the projection start over.
CHECKPOINTS_KEPT = 10_000
_NO_HISTORY = "0" * 40

# Moves the position (KEYS[1]) back to ARGV[1] unless it is already at or
# below it.
_MOVE_BACK = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local kept = tonumber(ARGV[1])
if current <= kept then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class PrimaryReplication:
    """Where one primary's replication stands (its ``INFO replication``)."""

    node_id: str
    address: str
    replication_id: str
    offset: int
    first_slot: int
    # The history it took over, and the last offset of it that it holds.
    previous_id: str | None = None
    previous_until: int = -1


def position_kept(
    position: int,
    primaries: Iterable[PrimaryReplication],
    known_nodes: Mapping[str, str],
    known_histories: set[str],
    held_checkpoints: Mapping[str, Iterable[int]],
    held_marks: Mapping[str, int],
) -> int:
    """The position every primary still holds the feeds up to.

    ``known_nodes`` maps the node ids seen before to their replication ids,
    ``known_histories`` holds the replication ids with checkpoints,
    ``held_checkpoints`` gives, for a primary's previous history, the
    positions of the checkpoints at or before the offset it holds, and
    ``held_marks`` the position of the mark each node holds, for the nodes
    that hold one (see :meth:`ShardHistory.mark_key`)."""
    kept = position
    for primary in primaries:
        if primary.replication_id in known_histories:
            continue  # the history checkpoints were taken in: nothing lost
        if primary.previous_id is not None and primary.previous_id in known_histories:
            # A replica promoted: good up to the newest checkpoint it holds.
            kept = min(kept, max(held_checkpoints.get(primary.previous_id, ()), default=0))
        elif primary.node_id in known_nodes:
            # Restarted: it holds what its last mark says (a snapshot or AOF
            # it loaded), or nothing.
            kept = min(kept, held_marks.get(primary.node_id, 0))
    return kept


class ShardHistory:
    """Checks, at a look at the position kept under ``position_key`` (once
    per :data:`CHECK_INTERVAL_SECONDS`), that every primary of the cluster
    still holds the feeds up to it (see the module's docstring)."""

    def __init__(self, client: RedisCluster, position_key: str) -> None:
        self.client = client
        self.position_key = position_key
        self._tag = f"{position_key}:{{{position_key}}}"
        self._move_back: Any = client.register_script(_MOVE_BACK)
        self._state = threading.Lock()
        self._checked_at = float("-inf")

    @property
    def nodes_key(self) -> str:
        return f"{self._tag}:nodes"

    def history_key(self, replication_id: str) -> str:
        return f"{self._tag}:history:{replication_id}"

    def mark_key(self, slot: int) -> str:
        """The mark of the node serving ``slot``: the position it held the
        feeds up to when the mark was written. A node that restarts from
        its own snapshot or AOF holds its mark of then, and every feed write
        made before it."""
        return f"{self.position_key}:{{{_tag_of(slot)}}}:mark"

    def checked_position(self) -> int | None:
        """The position (None when none was recorded); first, once every
        :data:`CHECK_INTERVAL_SECONDS`, moved back if a primary no longer
        holds the feeds up to it."""
        position = self._position()
        with self._state:
            if time.monotonic() - self._checked_at < CHECK_INTERVAL_SECONDS:
                return position
            self._checked_at = time.monotonic()  # one thread checks at a time
        try:
            kept = self._check_and_record(position or 0, self.primaries())
        except BaseException:
            with self._state:
                self._checked_at = float("-inf")  # the next look checks again
            raise
        if position is not None and kept < position:
            return self._position()
        return position

    def move_back(self, kept: int) -> bool:
        """Move the position back to ``kept`` if it is past it; whether it moved."""
        return bool(self._move_back(keys=[self.position_key], args=[kept]))

    def _position(self) -> int | None:
        raw = self.client.get(self.position_key)
        return None if raw is None else int(cast(bytes, raw))

    def primaries(self) -> list[PrimaryReplication]:
        """Every primary serving slots, as the cluster describes itself, with
        its ``INFO replication``; FeedUnavailableError while a failover is
        under way (a node listed as primary no longer is one)."""
        nodes = self.client.execute_command("CLUSTER NODES")  # type: ignore[no-untyped-call]
        primaries = []
        for address, node in nodes.items():
            if "master" not in node["flags"].split(",") or not node["slots"]:
                continue
            host, _, port = address.rpartition(":")
            if not host:  # a cluster of one node may not know its own address
                host = self.client.get_default_node().host  # type: ignore[no-untyped-call]
            host, port = self.client.nodes_manager.remap_host_port(host, int(port))
            first_slot = min(int(ranges[0]) for ranges in node["slots"])
            primaries.append(self._replication_of(node["node_id"], host, port, first_slot))
        return primaries

    def _replication_of(
        self, node_id: str, host: str, port: int, first_slot: int
    ) -> PrimaryReplication:
        node = self.client.get_node(host=host, port=port)  # type: ignore[no-untyped-call]
        if node is None:  # a node the client has not met yet
            self.client.nodes_manager.initialize()
            node = self.client.get_node(host=host, port=port)  # type: ignore[no-untyped-call]
        if node is None or node.redis_connection is None:
            raise FeedUnavailableError(f"Redis Cluster node {host}:{port} is not reachable yet")
        info = node.redis_connection.info("replication")
        if info.get("role") != "master":
            raise FeedUnavailableError(
                f"Redis Cluster is failing over: {host}:{port} serves slots but is no primary"
            )
        previous = _text(info.get("master_replid2", _NO_HISTORY))
        has_previous = previous.strip("0") != ""
        return PrimaryReplication(
            node_id=node_id,
            address=f"{host}:{port}",
            replication_id=_text(info["master_replid"]),
            offset=int(info["master_repl_offset"]),
            first_slot=first_slot,
            previous_id=previous if has_previous else None,
            previous_until=int(info.get("second_repl_offset", 0)) - 1 if has_previous else -1,
        )

    def _check_and_record(self, position: int, primaries: list[PrimaryReplication]) -> int:
        """Compare the primaries with what was recorded, lower the position
        if one lost feeds under it, and record where they stand now."""
        read = self.client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
        read.hgetall(self.nodes_key)
        for primary in primaries:
            read.get(self.mark_key(primary.first_slot))
            read.exists(self.history_key(primary.replication_id))
            if primary.previous_id is not None:
                read.exists(self.history_key(primary.previous_id))
                read.zrangebyscore(
                    self.history_key(primary.previous_id), "-inf", primary.previous_until
                )
        answers = iter(read.execute())
        known_nodes = {_text(k): _text(v) for k, v in next(answers).items()}
        known_histories: set[str] = set()
        held: dict[str, list[int]] = {}
        held_marks: dict[str, int] = {}
        for primary in primaries:
            mark = next(answers)
            if mark is not None:
                held_marks[primary.node_id] = int(mark)
            if next(answers):
                known_histories.add(primary.replication_id)
            if primary.previous_id is not None:
                if next(answers):
                    known_histories.add(primary.previous_id)
                held[primary.previous_id] = [int(member) for member in next(answers)]

        kept = position_kept(position, primaries, known_nodes, known_histories, held, held_marks)
        if kept < position:
            self.move_back(kept)
            lost = [p.address for p in primaries if p.replication_id not in known_histories]
            logger.warning(
                "Redis Cluster primaries %s no longer hold every feed write up to position "
                "%d: projecting again from %d",
                ", ".join(lost),
                position,
                kept,
            )

        record = self.client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
        for primary in primaries:
            key = self.history_key(primary.replication_id)
            good_up_to = position if primary.replication_id in known_histories else kept
            record.zadd(key, {str(good_up_to): primary.offset}, lt=True)
            record.zremrangebyrank(key, 0, -CHECKPOINTS_KEPT - 1)
            record.hset(self.nodes_key, primary.node_id, primary.replication_id)
            record.set(self.mark_key(primary.first_slot), good_up_to)
            replaced = {primary.previous_id, known_nodes.get(primary.node_id)}
            for old in replaced - {None, primary.replication_id}:
                record.delete(self.history_key(cast(str, old)))
        record.execute()
        return kept


@functools.cache
def _slot_tags() -> dict[int, str]:
    """A short hash tag for every slot (about 110,000 tries, 0.1 s, once)."""
    tags: dict[int, str] = {}
    n = 0
    while len(tags) < SLOTS:
        tags.setdefault(key_slot(str(n).encode()), str(n))
        n += 1
    return tags


def _tag_of(slot: int) -> str:
    return _slot_tags()[slot]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

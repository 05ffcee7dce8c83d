"""``position_kept``: the rule ShardHistory applies to a Redis Cluster's
primaries (their replication as ``INFO replication`` gives it, and what was
recorded of them) to find the position every shard still holds the feeds up
to. The failover and the restart themselves run on real clusters in
tests/integration/test_redis_cluster.py."""

from __future__ import annotations

from adapters.redis.shard_history import PrimaryReplication, position_kept

OLD, NEW, OTHER = "a" * 40, "b" * 40, "c" * 40


def primary(
    node_id: str, replication_id: str, previous_id: str | None = None, previous_until: int = -1
) -> PrimaryReplication:
    return PrimaryReplication(
        node_id,
        f"{node_id}:6379",
        replication_id,
        offset=5000,
        first_slot=0,
        previous_id=previous_id,
        previous_until=previous_until,
    )


def test_primaries_in_the_histories_checkpoints_were_taken_in_keep_the_position() -> None:
    primaries = [primary("n1", OLD), primary("n2", OTHER)]
    known = {"n1": OLD, "n2": OTHER}
    assert position_kept(90, primaries, known, {OLD, OTHER}, {}, {}) == 90


def test_the_first_look_takes_every_primary_as_it_is() -> None:
    primaries = [primary("n1", OLD), primary("n2", OTHER, previous_id=NEW, previous_until=7)]
    assert position_kept(90, primaries, {}, set(), {}, {}) == 90


def test_a_promoted_replica_is_good_up_to_the_newest_checkpoint_it_holds() -> None:
    promoted = primary("n3", NEW, previous_id=OLD, previous_until=4000)
    kept = position_kept(90, [promoted], {"n1": OLD}, {OLD}, {OLD: [60, 75, 40]}, {})
    assert kept == 75


def test_a_promoted_replica_holding_no_checkpoint_sends_the_projection_back_to_the_start() -> None:
    promoted = primary("n3", NEW, previous_id=OLD, previous_until=10)
    assert position_kept(90, [promoted], {"n1": OLD}, {OLD}, {OLD: []}, {}) == 0


def test_a_known_node_back_with_a_history_never_seen_restarted_empty() -> None:
    restarted = primary("n1", NEW)
    assert position_kept(90, [restarted], {"n1": OLD}, {OLD}, {}, {}) == 0


def test_a_known_node_restarted_from_its_snapshot_holds_what_its_mark_says() -> None:
    restarted = primary("n1", NEW)
    assert position_kept(90, [restarted], {"n1": OLD}, {OLD}, {}, {"n1": 70}) == 70
    assert position_kept(60, [restarted], {"n1": OLD}, {OLD}, {}, {"n1": 70}) == 60


def test_a_node_never_seen_got_its_slots_by_migration_and_lost_nothing() -> None:
    added = primary("n4", NEW)
    assert position_kept(90, [primary("n1", OLD), added], {"n1": OLD}, {OLD}, {}, {}) == 90


def test_the_position_is_the_lowest_any_primary_holds() -> None:
    primaries = [
        primary("n1", OLD),
        primary("n3", NEW, previous_id=OTHER, previous_until=100),
        primary("n4", "d" * 40, previous_id="e" * 40, previous_until=100),
    ]
    held = {OTHER: [80], "e" * 40: [70, 50]}
    assert position_kept(90, primaries, {"n1": OLD}, {OLD, OTHER, "e" * 40}, held, {}) == 70
    # never above the position itself
    assert position_kept(60, primaries, {"n1": OLD}, {OLD, OTHER, "e" * 40}, held, {}) == 60

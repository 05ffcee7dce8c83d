"""The feed model state machine (``tests/contract/feed_model.py``) with Chirp's
feeds in Redis: every feed read through the queries must equal the pure model
after every step, and a replay into a fresh namespace must equal the feeds
built incrementally.

Two variants: the production cap (800, never reached here, so timelines are
read from their caches), and a cap of 3 on every group, so nearly every page
goes past a cache and is merged from the followed feeds: copy limits, unfollows
and deletions must then come out exactly as the model (and the in-memory
provider) says. Each run's namespaces are deleted when it ends.
"""

from __future__ import annotations

import uuid
from functools import cache

import pytest
import redis
from eventsourcing.popo import POPOTrackingRecorder
from hypothesis import HealthCheck, settings

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.redis import RedisFeedProvider
from application.commands import ChirpApplication
from application.feed_names import HASHTAG, MENTIONS, TIMELINE, USER
from application.projectors import FeedProjector
from application.service import Chirp
from tests.contract.feed_model import COPY_LIMIT, make_machine
from tests.services import require_redis

pytestmark = pytest.mark.redis

LOW_CAP = 3


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(require_redis())


def machine_for(timeline_cap: int, capped_groups: frozenset[str]) -> type:
    created: list[RedisFeedProvider] = []

    def provider() -> RedisFeedProvider:
        made = RedisFeedProvider(
            _client(),
            namespace=f"model-{uuid.uuid4().hex}",
            timeline_cap=timeline_cap,
            capped_groups=capped_groups,
        )
        created.append(made)
        return made

    def build() -> Chirp:
        commands = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        projector = FeedProjector(provider(), POPOTrackingRecorder(), COPY_LIMIT)
        return Chirp(commands, InMemoryCatalog(), projector)

    base: type = make_machine(build, provider)

    class RedisChirpFeedsMachine(base):  # type: ignore[misc]
        def teardown(self) -> None:
            try:
                super().teardown()
            finally:
                while created:
                    created.pop().clear()

    RedisChirpFeedsMachine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    return RedisChirpFeedsMachine


class _NeedsRedis:
    def setUp(self) -> None:
        require_redis()


ProductionCapMachine = machine_for(800, frozenset({TIMELINE}))
LowCapMachine = machine_for(LOW_CAP, frozenset({TIMELINE, USER, MENTIONS, HASHTAG}))


class TestRedisChirpFeeds(_NeedsRedis, ProductionCapMachine.TestCase):  # type: ignore[name-defined,misc]
    pass


class TestRedisChirpFeedsPastTheCap(_NeedsRedis, LowCapMachine.TestCase):  # type: ignore[name-defined,misc]
    pass

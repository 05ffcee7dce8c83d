"""The feed model state machine through Chirp, with feeds on a local GetStream server.

Every command goes through the application, the projector, the GetStream
adapter, stream-python and HTTP; each machine run gets a fresh GetStream app
(its own API key and secret), and the replay at the end of the run goes into
another fresh app. The most crowded posts (``tests/contract/crowded_posts.py``)
go through it too, past GetStream's 100 targets a request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.popo import POPOTrackingRecorder
from hypothesis import HealthCheck, settings

from adapters.getstream import GetStreamFeedProvider, RetryPolicy
from adapters.inmemory.catalog import InMemoryCatalog
from application.commands import ChirpApplication
from application.projectors import FeedProjector
from application.service import Chirp
from chirp.bootstrap import event_store_env
from chirp.settings import Settings
from tests.contract.crowded_posts import check_crowded_posts
from tests.contract.feed_model import COPY_LIMIT, make_machine
from tests.getstream_server import GetStreamServer

SERVER = GetStreamServer()
RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.004)


@pytest.fixture(scope="module", autouse=True)
def _running_server() -> Iterator[None]:
    with SERVER:
        yield


def fresh_provider() -> GetStreamFeedProvider:
    return GetStreamFeedProvider(SERVER.client(SERVER.create_app()), retry=RETRY)


def build() -> Chirp:
    commands = ChirpApplication(env=event_store_env(Settings(database_url="memory:")))
    projector = FeedProjector(fresh_provider(), POPOTrackingRecorder(), COPY_LIMIT)
    return Chirp(commands, InMemoryCatalog(), projector)


GetStreamChirpMachine: Any = make_machine(build, fresh_provider)
GetStreamChirpMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestGetStreamChirpFeeds = GetStreamChirpMachine.TestCase


def test_the_most_crowded_posts_reach_every_feed_they_name() -> None:
    check_crowded_posts(build)

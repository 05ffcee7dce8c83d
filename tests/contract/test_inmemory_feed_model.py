"""The feed model state machine on the in-memory provider and in-memory stores."""

from hypothesis import HealthCheck, settings

from adapters.inmemory.feeds import InMemoryFeedProvider
from chirp.bootstrap import Settings, build_chirp
from tests.contract.feed_model import COPY_LIMIT, make_machine

InMemoryChirpMachine = make_machine(
    lambda: build_chirp(Settings(database_url="memory:", follow_copy_limit=COPY_LIMIT)),
    InMemoryFeedProvider,
)
InMemoryChirpMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestInMemoryChirpFeeds = InMemoryChirpMachine.TestCase

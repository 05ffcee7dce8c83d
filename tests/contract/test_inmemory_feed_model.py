"""The feed model state machine on the in-memory provider and in-memory stores.

Besides the default wiring, three variants whose feeds must read exactly the
same: every post fanned out in chunks of one follower; every account with a
follower fanned out at read time (celebrity threshold 1); and the two mixed
(threshold 2, chunks of 1). Each run's replay goes into a provider without
either, so it also compares the feeds built with and without them.
The most crowded posts (``tests/contract/crowded_posts.py``) run through the
default wiring.
"""

from hypothesis import HealthCheck, settings

from adapters.inmemory.feeds import InMemoryFeedProvider
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from tests.contract.crowded_posts import check_crowded_posts
from tests.contract.feed_model import COPY_LIMIT, make_machine


def _machine(max_examples: int, **options: int) -> type:
    machine: type = make_machine(
        lambda: build_chirp(
            Settings(database_url="memory:", follow_copy_limit=COPY_LIMIT, **options)  # type: ignore[arg-type]
        ),
        lambda: InMemoryFeedProvider(celebrity_threshold=None),
    )
    machine.TestCase.settings = settings(  # type: ignore[attr-defined]
        max_examples=max_examples,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    return machine


InMemoryChirpMachine = _machine(200)
ChunkedMachine = _machine(60, fan_out_chunk=1)
HybridMachine = _machine(60, celebrity_threshold=1)
MixedMachine = _machine(60, celebrity_threshold=2, fan_out_chunk=1)

TestInMemoryChirpFeeds = InMemoryChirpMachine.TestCase  # type: ignore[attr-defined]
TestInMemoryChirpFeedsChunked = ChunkedMachine.TestCase  # type: ignore[attr-defined]
TestInMemoryChirpFeedsHybrid = HybridMachine.TestCase  # type: ignore[attr-defined]
TestInMemoryChirpFeedsMixed = MixedMachine.TestCase  # type: ignore[attr-defined]


def test_the_most_crowded_posts_reach_every_feed_they_name() -> None:
    check_crowded_posts(lambda: build_chirp(Settings(database_url="memory:")))

"""An event log written by Chirp's first event schema still replays into the same feeds.

``tests/fixtures/event_log_v1.json`` was written once by
``tests/fixtures/write_event_log.py`` and is never regenerated: if renaming a
class or changing an event breaks reading old logs, this test fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.inmemory.feeds import InMemoryFeedProvider
from application.commands import ChirpApplication
from application.projectors import FeedProjector
from application.service import Chirp

FIXTURE = Path(__file__).parents[1] / "fixtures" / "event_log_v1.json"


@pytest.fixture
def chirp() -> Chirp:
    log = json.loads(FIXTURE.read_text())
    app = ChirpApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(record["originator_id"]),
                originator_version=record["originator_version"],
                topic=record["topic"],
                state=record["state"].encode(),
            )
            for record in log["events"]
        ]
    )
    projector = FeedProjector(InMemoryFeedProvider(), POPOTrackingRecorder())
    chirp = Chirp(app, InMemoryCatalog(), projector)
    chirp.sync()
    return chirp


def texts(page: object) -> list[str]:
    return [item.text for item in page.items]  # type: ignore[attr-defined]


def test_the_stored_log_replays_into_the_expected_feeds(chirp: Chirp) -> None:
    queries = chirp.queries
    cc = "cc @bob and @nobody https://example.com"
    reading = "Reading #django docs with @ALICE"
    assert texts(queries.profile_feed("alice")) == [cc]
    assert texts(queries.home_timeline("bob")) == [reading, cc]
    assert texts(queries.home_timeline("carol")) == []
    assert texts(queries.mentions("bob")) == [cc]
    assert texts(queries.mentions("alice")) == [reading]
    assert texts(queries.hashtag("DJANGO")) == [reading]


def test_the_stored_log_rebuilds_users_and_entities(chirp: Chirp) -> None:
    bob = chirp.queries.user("BOB")
    assert (bob.display_name, bob.bio, bob.following_count) == ("Bobby", "I post about #django", 1)
    assert chirp.queries.user("alice").followers_count == 1
    assert chirp.commands.get_user("carol").following == set()
    assert chirp.commands.get_user("bob").following == {"alice"}
    [item] = chirp.queries.profile_feed("alice").items
    assert [(e.kind, e.text, e.start, e.end) for e in item.entities] == [
        ("mention", "bob", 3, 7),
        ("url", "https://example.com", 20, 39),
    ]
    assert item.author.display_name == "Alice A."

"""``/health``: where each projection of the process is, 503 when one is stuck."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.test import Client

from application.projection_status import STUCK_AFTER_ATTEMPTS
from application.service import Chirp
from tests.poison import Clock, poisoned_chirp
from web.runtime import use_chirp


@pytest.fixture
def poisoned(db: None) -> Iterator[Chirp]:
    instance, _, _ = poisoned_chirp(Clock())
    previous = use_chirp(instance)
    yield instance
    use_chirp(previous)
    instance.close()


def test_health_says_each_projection_is_ok(client: Client, chirp: Chirp) -> None:
    chirp.register("alice")
    chirp.sync()
    response = client.get("/health")
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["status"] == "ok"
    assert [(p["name"], p["state"], p["position"], p["head"]) for p in body["projections"]] == [
        ("catalog", "ok", 1, 1),
        ("feeds", "ok", 1, 1),
    ]
    assert client.head("/health").status_code == 200


def test_health_is_503_and_names_the_event_a_projection_is_stuck_on(
    client: Client, poisoned: Chirp
) -> None:
    poisoned.register("alice")
    poisoned.post("alice", "poison")
    poisoned.register("bob")  # stored, waiting behind the post
    poisoned.sync()  # the first attempt fails
    assert client.get("/health").status_code == 200  # retrying: not stuck yet
    for _ in range(STUCK_AFTER_ATTEMPTS - 1):
        poisoned.sync()
    response = client.get("/health")
    assert response.status_code == 503
    body = json.loads(response.content)
    catalog, feeds = body["projections"]
    assert (catalog["state"], catalog["lag"]) == ("ok", 0)
    assert (feeds["state"], feeds["position"], feeds["head"], feeds["lag"]) == ("stuck", 1, 3, 2)
    assert feeds["waiting_on"]["event"] == 2 and feeds["waiting_on"]["topic"] == "chirp:TweetPosted"
    failure = feeds["failure"]
    assert (failure["event"], failure["topic"], failure["error_type"]) == (
        2,
        "chirp:TweetPosted",
        "Broken",
    )
    assert failure["attempts"] == STUCK_AFTER_ATTEMPTS
    assert b"cannot project this post" not in response.content  # the message is in the log

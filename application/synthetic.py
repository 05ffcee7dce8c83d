"""Synthetic social networks, as workload ops (``shared/workload/FORMAT.md``).

Follows are drawn with Zipf weights over a random popularity ranking, so a
few accounts gather a large share of followers (a heavy tail, as on real
networks); followee counts follow the Stream-Framework-Bench mix. The result
is applied with ``application.workload.load_workload``. Deterministic for a
given seed.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

TAGS = ["python", "django", "news", "music", "coffee", "travel", "books", "chirp", "tech", "art"]
SENTENCES = [
    "Just shipped a new feature",
    "Reading a great book today",
    "Anyone up for coffee?",
    "The weather is lovely",
    "Thinking about event sourcing again",
    "Fresh ideas for the weekend",
    "This made my day",
]


def _followee_count(rng: random.Random, users: int) -> int:
    roll = rng.random()
    if roll < 0.5:
        count = 5
    elif roll < 0.75:
        count = 50
    elif roll < 0.85:
        count = 100
    elif roll < 0.98:
        count = rng.randint(100, 1000)
    else:
        count = rng.randint(1000, 5000)
    return min(count, users - 1)


def synthetic_network(
    users: int, posts_per_user: int = 5, seed: int = 1, start: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Ops for ``users`` users (``user1``...), their follows, then their posts."""
    if users < 2:
        raise ValueError("a network needs at least 2 users")
    rng = random.Random(seed)
    names = [f"user{i}" for i in range(1, users + 1)]
    for name in names:
        yield {"op": "register", "username": name}
    ranking = names[:]
    rng.shuffle(ranking)
    cumulative = list(itertools.accumulate(1 / rank for rank in range(1, users + 1)))
    total = cumulative[-1]
    for follower in names:
        wanted = _followee_count(rng, users)
        chosen: set[str] = set()
        while len(chosen) < wanted:
            followee = ranking[bisect.bisect_left(cumulative, rng.random() * total)]
            if followee != follower:
                chosen.add(followee)
        for followee in sorted(chosen):
            yield {"op": "follow", "follower": follower, "followee": followee}
    moment = start or datetime(2025, 1, 1, tzinfo=UTC)
    for _ in range(users * posts_per_user):
        moment += timedelta(seconds=rng.randint(1, 120))
        author = rng.choice(names)
        text = rng.choice(SENTENCES)
        if rng.random() < 0.3:
            text += " #" + rng.choice(TAGS)
        if rng.random() < 0.1:
            text = f"@{rng.choice(names)} " + text
        yield {
            "op": "post",
            "username": author,
            "text": text,
            "at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }

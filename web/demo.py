"""The demo network seeded on first start, so a fresh Chirp is alive at once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from application.service import Chirp
from web.services import sign_up

DEMO_PASSWORD = "chirp-demo-password"
DEMO_LOGIN = "alice"
PEOPLE = [
    ("alice", "Alice Liddell", "Curiouser and curiouser. #python fan."),
    ("bob", "Bob Builder", "Can we fix it? Yes we can."),
    ("carol", "Carol Danvers", "Higher, further, faster."),
    ("dave", "Dave Bowman", "Open the pod bay doors."),
    ("erin", "Erin Brockovich", "Clean water for everyone."),
    ("frank", "Frank Gehry", "Buildings that dance."),
    ("grace", "Grace Hopper", "It's easier to ask forgiveness."),
    ("heidi", "Heidi Klum", "One day you're in."),
    ("ivan", "Ivan Pavlov", "Ring the bell."),
    ("judy", "Judy Hopps", "Anyone can be anything."),
    ("mallory", "Mallory Knox", "Trust no one."),
    ("oscar", "Oscar Wilde", "Be yourself; everyone else is already taken."),
]
TAGS = ["python", "django", "coffee", "music", "chirp", "books", "travel", "eventsourcing"]
LINES = [
    "Good morning everyone!",
    "Trying out Chirp today",
    "Who else is reading about {tag}?",
    "Coffee first, code later",
    "Just finished a long walk",
    "Hot take: tabs are fine",
    "Shipping on a Friday, wish me luck",
    "This view is amazing",
    "Learning something new every day",
    "Can't stop listening to this album",
]


def seed_demo(chirp: Chirp, posts: int = 100, seed: int = 7) -> int:
    """Register the demo people (with log-ins), follows and ``posts`` posts."""
    rng = random.Random(seed)
    names = [name for name, _, _ in PEOPLE]
    for name, display_name, bio in PEOPLE:
        sign_up(chirp, name, DEMO_PASSWORD, display_name)
        chirp.update_profile(name, display_name, bio)
    for name in names:
        for other in rng.sample([n for n in names if n != name], 5):
            chirp.follow(name, other)
    now = datetime.now(UTC)
    for number in range(posts):
        author = rng.choice(names)
        tag = rng.choice(TAGS)
        text = rng.choice(LINES).format(tag=f"#{tag}")
        if "#" not in text and rng.random() < 0.5:
            text += f" #{tag}"
        if rng.random() < 0.25:
            text = f"@{rng.choice([n for n in names if n != author])} {text}"
        if rng.random() < 0.08:
            text += " https://github.com/pyeventsourcing/eventsourcing"
        chirp.post(author, text, now - timedelta(minutes=7 * (posts - number)))
    return len(names)

"""The most crowded posts the domain accepts, projected through a whole Chirp.

A post of 280 weighted characters can mention about 80 people (each mention
reaches three of their feeds) or carry about 90 hashtags: far more feed
targets than GetStream takes in one request (100). Every such post must reach
every feed it names and leave them all when deleted, on every provider;
:func:`check_crowded_posts` runs that check on a Chirp built by a test module.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Iterable

from application.service import Chirp
from domain.text import MAX_WEIGHTED_LENGTH, weighted_length

AUTHOR = "author"
# The shortest usernames: one character, then two.
_NAME_CHARACTERS = string.ascii_lowercase + string.digits + "_"
# One-letter hashtags that count one character each and differ after case
# folding: Latin, Greek (without the final sigma, folded to sigma), Cyrillic
# and Armenian small letters.
_TAG_LETTERS = (
    string.ascii_lowercase
    + "".join(chr(code) for code in range(0x3B1, 0x3CA) if code != 0x3C2)
    + "".join(chr(code) for code in range(0x430, 0x450))
    + "".join(chr(code) for code in range(0x561, 0x587))
)


def shortest_usernames() -> Iterable[str]:
    yield from _NAME_CHARACTERS
    for first, second in itertools.product(_NAME_CHARACTERS, repeat=2):
        yield first + second


def fill(words: Iterable[str]) -> str:
    """``words`` joined by spaces, as many as fit in one post."""
    text = ""
    for word in words:
        longer = f"{text} {word}" if text else word
        if weighted_length(longer) > MAX_WEIGHTED_LENGTH:
            return text
        text = longer
    raise ValueError("ran out of words before the post was full")


def most_mentions() -> tuple[str, list[str]]:
    """A full post of mentions, and the usernames it mentions."""
    text = fill(f"@{name}" for name in shortest_usernames())
    return text, [word[1:] for word in text.split()]


def most_hashtags() -> tuple[str, list[str]]:
    """A full post of hashtags, and its tags."""
    if len(_TAG_LETTERS) * 3 < MAX_WEIGHTED_LENGTH:
        raise AssertionError("not enough one-letter hashtags to fill a post")
    text = fill(f"#{letter}" for letter in _TAG_LETTERS)
    return text, [word[1:] for word in text.split()]


def mentions_and_hashtags() -> tuple[str, list[str], list[str]]:
    """A full post alternating mentions and hashtags."""
    pairs = zip(shortest_usernames(), _TAG_LETTERS, strict=False)
    text = fill(itertools.chain.from_iterable((f"@{name}", f"#{tag}") for name, tag in pairs))
    words = text.split()
    return text, [w[1:] for w in words if w[0] == "@"], [w[1:] for w in words if w[0] == "#"]


def check_crowded_posts(build: Callable[[], Chirp]) -> None:
    """Post each crowded post on a fresh Chirp from ``build``: it reaches
    every mentioned person's timeline, mentions and notifications and every
    hashtag feed; deleted, it is gone from all of them."""
    mentions_text, mentioned_names = most_mentions()
    hashtags_text, hashtags = most_hashtags()
    cases = [
        (mentions_text, mentioned_names, []),
        (hashtags_text, [], hashtags),
        mentions_and_hashtags(),
    ]
    for text, mentioned, tags in cases:
        assert weighted_length(text) >= MAX_WEIGHTED_LENGTH - 3, "the post is not full"
        chirp = build()
        try:
            chirp.register(AUTHOR)
            for name in mentioned:
                chirp.register(name)
            post_id = chirp.post(AUTHOR, text)
            _check_everywhere(chirp, mentioned, tags, post_id, present=True)
            chirp.delete_post(post_id, by=AUTHOR)
            _check_everywhere(chirp, mentioned, tags, post_id, present=False)
        finally:
            chirp.close()


def _check_everywhere(
    chirp: Chirp, mentioned: list[str], tags: list[str], post_id: object, present: bool
) -> None:
    queries = chirp.queries
    expected = [post_id] if present else []
    assert [item.post_id for item in queries.profile_feed(AUTHOR).items] == expected
    for name in mentioned:
        for page in (queries.home_timeline(name), queries.mentions(name)):
            assert [item.post_id for item in page.items] == expected, name
        notified = [n.post.post_id for n in queries.notifications(name).items if n.post]
        assert notified == expected, name
    for tag in tags:
        assert [item.post_id for item in queries.hashtag(tag).items] == expected, tag

"""``weighted_length`` counts an ASCII text without twitter-text's emoji scan,
and must give what ``twitter_text.parse_tweet`` gives for every such text: the
library is the oracle, on every ASCII character and on generated posts with
URLs, mentions, hashtags, keycap-like characters and every kind of line end.
A twitter-text upgrade that weighs ASCII otherwise fails here."""

from __future__ import annotations

import random

import pytest
from twitter_text import parse_tweet

from domain.text import weighted_length

PIECES = [
    "hello", "world", "a", "I", "post", "@alice", "@Bob_99", "#chirp", "#1", "#", "*", "1",
    "0", "#*", "https://example.com", "http://a.b/c?d=e&f=g#h", "www.example.org",
    "example.co.uk/path", "t.co/x", "x.y", "e.g.", "...", "!!", "(", ")", "\"quoted\"",
    "'s", "a-b", "a_b", "\r\n", "\n", "\r", "\t", " ", "  ", ":)", "<3", "$5", "100%",
    "mail@example.com", "ftp://example.com", "https://example.com/" + "p" * 40, "~", "^",
]  # fmt: skip


def generated_posts(count: int, seed: int = 15) -> list[str]:
    rng = random.Random(seed)
    posts = []
    for _ in range(count):
        words = [rng.choice(PIECES) for _ in range(rng.randrange(1, 80))]
        posts.append("".join(w + rng.choice(["", " ", " ", "\n"]) for w in words))
    return posts


@pytest.mark.parametrize("code", range(128))
def test_each_ascii_character_alone_and_in_words(code: int) -> None:
    for text in (chr(code), f"a{chr(code)}b", f"{chr(code)} https://example.com {chr(code)}"):
        assert weighted_length(text) == parse_tweet(text).weightedLength


def test_generated_posts_count_as_twitter_text_counts_them() -> None:
    posts = generated_posts(1000)
    assert any(weighted_length(p) > 280 for p in posts)  # long ones too
    assert any("\r\n" in p for p in posts)
    for post in posts:
        assert weighted_length(post) == parse_tweet(post).weightedLength, repr(post)

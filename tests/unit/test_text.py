"""Plain unit tests of domain.text, for what the twitter-text conformance cases
leave out: Chirp's own username limit, hashtag keys, lists, fullwidth signs,
the length limit and how hashtags give way to URLs."""

from __future__ import annotations

import pytest

from domain.text import (
    MAX_WEIGHTED_LENGTH,
    Entity,
    extract_hashtags,
    extract_mentions,
    extract_reply_username,
    extract_urls,
    is_valid_hashtag,
    is_valid_length,
    is_valid_username,
    normalize_hashtag,
    weighted_length,
)


def test_mentions_carry_code_point_indices_including_the_at_sign() -> None:
    text = "🐦 hi @alice and \uff20bob"
    assert extract_mentions(text) == [Entity("alice", 5, 11), Entity("bob", 16, 20)]
    assert text[5:11] == "@alice"


def test_list_references_are_not_mentions() -> None:
    assert extract_mentions("@alice/friends hi @bob") == [Entity("bob", 18, 22)]


def test_mention_right_after_a_list_that_ends_in_a_hyphen_is_not_extracted() -> None:
    # twitter-text consumes the character before "@", which the list already used.
    assert extract_mentions("@user/list-@other") == []


def test_reply_username_is_the_leading_mention_only() -> None:
    assert extract_reply_username("@alice @bob hello") == "alice"
    assert extract_reply_username("hello @alice") is None
    assert extract_reply_username("") is None


def test_hashtags_with_fullwidth_sign_and_indices() -> None:
    assert extract_hashtags("\uff03Django and #python") == [
        Entity("Django", 0, 7),
        Entity("python", 12, 19),
    ]


def test_hashtag_inside_a_url_gives_way_to_the_url() -> None:
    text = "see example.com/#frag #real"
    assert extract_urls(text) == [Entity("example.com/#frag", 4, 21)]
    assert extract_hashtags(text) == [Entity("real", 22, 27)]


@pytest.mark.parametrize("text", ["&#39;s", "#️⃣", "a#b", "#tag#other", "#12"])
def test_not_hashtags(text: str) -> None:
    assert extract_hashtags(text) == []


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("a", True),
        ("A_1", True),
        ("x" * 15, True),
        ("x" * 16, False),
        ("", False),
        ("@alice", False),
        ("al-ice", False),
        ("alice\n", False),
        ("ålice", False),
    ],
)
def test_is_valid_username(name: str, valid: bool) -> None:
    assert is_valid_username(name) is valid


@pytest.mark.parametrize(
    ("tag", "valid"),
    [
        ("Django", True),
        ("café", True),
        ("1st", True),
        ("", False),
        ("123", False),
        ("#django", False),
        ("two words", False),
        ("trailing.", False),
    ],
)
def test_is_valid_hashtag(tag: str, valid: bool) -> None:
    assert is_valid_hashtag(tag) is valid


def test_normalize_hashtag_is_case_insensitive() -> None:
    assert normalize_hashtag("Django") == normalize_hashtag("django") == "django"
    assert normalize_hashtag("ДЖАНГО") == "джанго"


def test_weighted_length_counts_cjk_emoji_and_urls() -> None:
    assert weighted_length("abc") == 3
    assert weighted_length("日本") == 4
    assert weighted_length("👨‍👩‍👧") == 2
    assert weighted_length("go https://example.com/" + "a" * 100) == 3 + 23


def test_length_limit() -> None:
    assert MAX_WEIGHTED_LENGTH == 280
    assert is_valid_length("x" * MAX_WEIGHTED_LENGTH)
    assert not is_valid_length("x" * (MAX_WEIGHTED_LENGTH + 1))
    assert not is_valid_length("日" * 141)
    assert not is_valid_length("")

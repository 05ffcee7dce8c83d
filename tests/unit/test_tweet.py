"""The Tweet aggregate on its own: text rules by weighted length, entities with
code point indices, mention resolution, hashtag normalisation and deletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.errors import (
    DomainError,
    InvalidTweetText,
    NotTheAuthor,
    TweetAlreadyDeleted,
)
from domain.tweet import TextEntity, Tweet, find_entities, hashtags_of, mentions_of
from tests.events import new_events

KNOWN = {"bob": "Bob", "carol": "carol"}
URL = "https://example.com/" + "x" * 100  # 120 code points, weighs 23


def post(text: str, known: dict[str, str] | None = None, author: str = "alice") -> Tweet:
    return Tweet.post(author, text, KNOWN if known is None else known)


def posted(text: str = "hello", author: str = "alice") -> Tweet:
    """A post whose Posted event has already been collected."""
    tweet = post(text, author=author)
    assert len(tweet.collect_events()) == 1
    return tweet


# -- text ------------------------------------------------------------------------


def test_post_records_author_text_and_time() -> None:
    moment = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    tweet = Tweet.post("alice", "hello world", {}, moment)
    assert (tweet.author, tweet.text, tweet.posted_at) == ("alice", "hello world", moment)
    assert tweet.is_deleted is False
    (event,) = new_events(tweet, Tweet.Posted)
    assert (event.author, event.text, event.posted_at) == ("alice", "hello world", moment)
    assert event.entities == []


def test_posted_at_is_stored_in_utc() -> None:
    paris_summer = timezone(timedelta(hours=2))
    tweet = Tweet.post("alice", "hi", {}, datetime(2024, 5, 1, 14, 30, tzinfo=paris_summer))
    assert tweet.posted_at == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert tweet.posted_at.utcoffset() == timedelta(0)


def test_posted_at_defaults_to_now_in_utc() -> None:
    before = datetime.now(UTC)
    tweet = Tweet.post("alice", "hi", {})
    after = datetime.now(UTC)
    assert before <= tweet.posted_at <= after
    assert tweet.posted_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", " ", "   \n\t  ", "\u3000"])
def test_empty_or_blank_post_is_rejected(text: str) -> None:
    with pytest.raises(InvalidTweetText) as caught:
        post(text)
    assert str(caught.value) == "a post cannot be empty"


def test_post_of_280_characters_is_accepted() -> None:
    assert post("a" * 280).text == "a" * 280


def test_post_of_281_characters_is_rejected_with_its_count() -> None:
    with pytest.raises(InvalidTweetText) as caught:
        post("a" * 281)
    message = str(caught.value)
    assert "at most 280 characters" in message
    assert "counts 281" in message


def test_cjk_characters_weigh_two() -> None:
    assert post("あ" * 140).text == "あ" * 140
    with pytest.raises(InvalidTweetText, match="counts 282"):
        post("あ" * 141)


def test_cjk_and_latin_mix_by_weight() -> None:
    assert post("中" * 100 + "a" * 80).text.startswith("中")  # 200 + 80 = 280
    with pytest.raises(InvalidTweetText, match="counts 281"):
        post("中" * 100 + "a" * 81)


def test_a_url_counts_23_whatever_its_length() -> None:
    fits = "a" * 256 + " " + URL  # 256 + 1 + 23 = 280, though 377 code points
    assert len(fits) == 377
    assert post(fits).text == fits
    with pytest.raises(InvalidTweetText, match="counts 281"):
        post("a" + fits)


def test_emoji_weigh_two() -> None:
    assert post("🐦" * 140).text == "🐦" * 140
    with pytest.raises(InvalidTweetText, match="counts 282"):
        post("🐦" * 141)


def test_an_emoji_sequence_weighs_two() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # man ZWJ woman ZWJ girl
    assert post("a" * 278 + family).text.endswith(family)
    with pytest.raises(InvalidTweetText, match="counts 281"):
        post("a" * 279 + family)


def test_nul_character_is_rejected() -> None:
    with pytest.raises(InvalidTweetText, match="control characters such as U\\+0000"):
        post("hello\x00world")


@pytest.mark.parametrize("control", ["\x01", "\x07", "\x1b", "\x7f", "\x9b"])
def test_control_characters_are_rejected(control: str) -> None:
    with pytest.raises(InvalidTweetText) as caught:
        post(f"ring{control}ring")
    assert (
        str(caught.value)
        == f"a post cannot contain control characters such as U+{ord(control):04X}"
    )


@pytest.mark.parametrize("invalid", ["\ufeff", "\ufffe", "\uffff"])
def test_twitter_texts_invalid_characters_are_rejected(invalid: str) -> None:
    with pytest.raises(InvalidTweetText, match=f"cannot contain U\\+{ord(invalid):04X}"):
        post(f"a{invalid}b")


@pytest.mark.parametrize(
    "text",
    ["\u200b", "\u200c\u200d", "\u2060 \u2060", "\u200e\u200f", "\u3164", "\u2800", "\u180e"],
)
def test_a_post_of_only_invisible_characters_is_rejected(text: str) -> None:
    with pytest.raises(InvalidTweetText, match="a post needs some visible text"):
        post(text)


def test_a_post_stored_before_the_rules_still_replays() -> None:
    """Rules run on commands, never on stored events: an old log still loads."""
    old = Tweet(author="alice", text="\u200b\x07", posted_at=datetime.now(UTC), entities=[])
    copy: Tweet | None = None
    for domain_event in old.collect_events():
        copy = domain_event.mutate(copy)
    assert copy is not None and copy.text == "\u200b\x07"


def test_invalid_text_is_a_domain_error() -> None:
    with pytest.raises(DomainError):
        post("")


# -- entities --------------------------------------------------------------------


def test_entities_are_recorded_in_order_with_code_point_indices() -> None:
    text = "🐦 #Django by @bob at https://example.com/x !"
    tweet = post(text)
    assert tweet.entities == [
        TextEntity("hashtag", "Django", 2, 9),
        TextEntity("mention", "Bob", 13, 17),
        TextEntity("url", "https://example.com/x", 21, 42),
    ]
    assert [text[e.start : e.end] for e in tweet.entities] == [
        "#Django",
        "@bob",
        "https://example.com/x",
    ]


def test_entities_are_stored_in_the_event_as_dicts() -> None:
    tweet = post("hi @carol #x")
    (event,) = new_events(tweet, Tweet.Posted)
    assert event.entities == [
        {"kind": "mention", "text": "carol", "start": 3, "end": 9},
        {"kind": "hashtag", "text": "x", "start": 10, "end": 12},
    ]


def test_text_entity_round_trips_through_a_dict() -> None:
    entity = TextEntity("url", "https://example.com", 4, 23)
    assert TextEntity.from_dict(entity.as_dict()) == entity


def test_mentions_are_kept_only_for_known_users() -> None:
    tweet = post("@ghost hi @carol and @nobody")
    assert tweet.entities == [TextEntity("mention", "carol", 10, 16)]
    assert tweet.mentions == ["carol"]


def test_mention_is_stored_under_the_canonical_username() -> None:
    tweet = post("hey @BOB and @bOb")
    assert [(e.kind, e.text, e.start, e.end) for e in tweet.entities] == [
        ("mention", "Bob", 4, 8),
        ("mention", "Bob", 13, 17),
    ]
    assert tweet.mentions == ["Bob"]


def test_mentions_are_listed_once_each_in_order_of_first_mention() -> None:
    tweet = post("@carol @bob @carol @Bob")
    assert tweet.mentions == ["carol", "Bob"]
    assert len([e for e in tweet.entities if e.kind == "mention"]) == 4


def test_no_known_users_means_no_mentions() -> None:
    tweet = post("@bob @carol", known={})
    assert tweet.entities == []
    assert tweet.mentions == []


def test_a_self_mention_is_kept() -> None:
    tweet = Tweet.post("alice", "note to @alice", {"alice": "alice"})
    assert tweet.mentions == ["alice"]


def test_hashtags_are_normalised_once_each() -> None:
    tweet = post("#Django #django")
    assert tweet.hashtags == ["django"]
    # The entities keep the tags as written.
    assert [e.text for e in tweet.entities] == ["Django", "django"]


def test_hashtags_are_listed_in_order_of_first_use() -> None:
    tweet = post("#Python rocks #DJANGO #python #Web")
    assert tweet.hashtags == ["python", "django", "web"]


def test_non_ascii_hashtags_are_lower_cased() -> None:
    assert post("#École #école #日本").hashtags == ["école", "日本"]


def test_hashtags_are_case_folded() -> None:
    fullwidth = "\uff33\uff34\uff32\uff21\uff33\uff33\uff25"
    assert post(f"#Straße #STRASSE #STRAẞE #{fullwidth}").hashtags == ["strasse"]


def test_a_mention_inside_a_url_is_not_a_mention() -> None:
    tweet = post("see https://example.com/?a=@bob")
    assert tweet.mentions == []
    assert [e.kind for e in tweet.entities] == ["url"]


def test_a_hashtag_inside_a_url_is_not_a_hashtag() -> None:
    tweet = post("see https://example.com/#anchor")
    assert tweet.hashtags == []
    assert [e.kind for e in tweet.entities] == ["url"]


def test_find_entities_and_helpers_agree_with_the_aggregate() -> None:
    text = "#A @carol #a @bob"
    entities = find_entities(text, KNOWN)
    assert hashtags_of(entities) == ["a"]
    assert mentions_of(entities) == ["carol", "Bob"]
    assert post(text).entities == entities


# -- deletion --------------------------------------------------------------------


def test_author_can_delete_a_post() -> None:
    tweet = posted(author="Alice")
    tweet.delete("Alice")
    assert tweet.is_deleted is True
    (event,) = new_events(tweet, Tweet.Deleted)
    assert event.author == "Alice"


def test_author_may_delete_in_another_case() -> None:
    tweet = posted(author="Alice")
    tweet.delete("aLICE")
    assert tweet.is_deleted is True
    assert [e.author for e in new_events(tweet, Tweet.Deleted)] == ["Alice"]


def test_only_the_author_can_delete_a_post() -> None:
    tweet = posted(author="alice")
    with pytest.raises(NotTheAuthor) as caught:
        tweet.delete("bob")
    assert str(caught.value) == "only its author can delete a post"
    assert tweet.collect_events() == []
    assert tweet.is_deleted is False


def test_a_post_can_be_deleted_only_once() -> None:
    tweet = posted()
    tweet.delete("alice")
    tweet.collect_events()
    with pytest.raises(TweetAlreadyDeleted, match="already deleted"):
        tweet.delete("alice")
    assert tweet.collect_events() == []
    assert tweet.is_deleted is True


def test_non_author_is_refused_before_being_told_the_post_is_gone() -> None:
    tweet = posted()
    tweet.delete("alice")
    tweet.collect_events()
    with pytest.raises(NotTheAuthor):
        tweet.delete("mallory")
    assert tweet.collect_events() == []


def test_state_is_rebuilt_from_the_events() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    tweet = Tweet.post("alice", "hi @bob #Tag", KNOWN, moment)
    tweet.delete("ALICE")
    copy: Tweet | None = None
    for domain_event in tweet.collect_events():
        copy = domain_event.mutate(copy)
    assert copy is not None
    assert (copy.id, copy.version) == (tweet.id, 2)
    assert (copy.author, copy.text, copy.posted_at) == ("alice", "hi @bob #Tag", moment)
    assert copy.entities == tweet.entities
    assert copy.hashtags == ["tag"]
    assert copy.mentions == ["Bob"]
    assert copy.is_deleted is True

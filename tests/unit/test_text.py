"""Plain unit tests of domain.text, for what the twitter-text conformance cases
leave out: Chirp's own username limit, hashtag keys, lists, fullwidth signs,
the length limit and how hashtags give way to URLs."""

from __future__ import annotations

import pytest

from domain.text import (
    MAX_WEIGHTED_LENGTH,
    Entity,
    bio_character_problem,
    extract_entities,
    extract_hashtags,
    extract_mentions,
    extract_reply_username,
    extract_urls,
    is_valid_hashtag,
    is_valid_length,
    is_valid_username,
    name_character_problem,
    normalize_hashtag,
    post_text_problem,
    weighted_length,
    without_refused_name_characters,
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


# -- what a post may hold ----------------------------------------------------------


@pytest.mark.parametrize("text", ["a\ufeffb", "a\ufffeb", "a\uffffb", "\ufeffhello"])
def test_twitter_texts_invalid_characters_are_refused(text: str) -> None:
    problem = post_text_problem(text)
    assert problem is not None
    assert problem.startswith("a post cannot contain U+")


@pytest.mark.parametrize(
    "control", ["\x00", "\x01", "\x07", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9f"]
)
def test_control_characters_are_refused(control: str) -> None:
    problem = post_text_problem(f"a{control}b")
    assert problem == f"a post cannot contain control characters such as U+{ord(control):04X}"


def test_tabs_and_line_breaks_are_text() -> None:
    assert post_text_problem("one\ttwo\nthree\r\nfour") is None


@pytest.mark.parametrize(
    "invisible",
    ["\u200b", "\u200c", "\u200d", "\u2060", "\u200e", "\u200f", "\u3164", "\u2800", "\u180e"],
)
def test_a_post_of_only_invisible_characters_is_refused(invisible: str) -> None:
    problem = post_text_problem(f" {invisible}{invisible}\n{invisible} ")
    assert problem is not None
    assert problem.startswith("a post needs some visible text")
    assert f"U+{ord(invisible):04X}" in problem
    # The same characters inside visible text are the author's business.
    assert post_text_problem(f"a{invisible}b") is None


def test_directional_marks_around_visible_text_are_valid_as_in_twitter_text() -> None:
    assert post_text_problem("\u2066\u202ahttp://foobar.\u067e\u0627\u06a9/\u202c\u2069") is None


def test_empty_and_too_long_posts_are_refused_with_their_reason() -> None:
    assert post_text_problem("") == "a post cannot be empty"
    assert post_text_problem(" \n\u3000") == "a post cannot be empty"
    too_long = post_text_problem("x" * 281)
    assert too_long is not None and "counts 281" in too_long
    assert post_text_problem("x" * 280) is None


def test_unpaired_surrogates_are_refused() -> None:
    assert post_text_problem("a\ud800b") is not None


# -- what a display name may hold --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("dn\u202e285809", "direction controls such as U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("\u202dAlice", "direction controls such as U+202D"),
        ("Alice\u200e", "direction controls such as U+200E"),
        ("Ali\u061cce", "direction controls such as U+061C"),
        ("\u2067Alice\u2069", "direction controls such as U+2067"),
        ("Ali\u200bce Liddell", "invisible characters such as U+200B (ZERO WIDTH SPACE)"),
        ("Ali\u2060ce", "invisible characters such as U+2060"),
        ("Ali\ufeffce", "invisible characters such as U+FEFF"),
        ("Ali\u180ece", "invisible characters such as U+180E"),
        ("\u3164", "invisible characters such as U+3164"),
        ("A\u115fB", "invisible characters such as U+115F"),
        ("A\u1160B", "invisible characters such as U+1160"),
        ("A\uffa0B", "invisible characters such as U+FFA0"),
        ("A\u2800B", "invisible characters such as U+2800"),
        ("Ali\u00adce", "invisible characters such as U+00AD"),
        ("Ali\u200dce", "invisible characters such as U+200D"),
        ("Ali\u200cce", "invisible characters such as U+200C"),
        ("Ali\ufe0fce", "invisible characters such as U+FE0F"),
        ("Alice\u2028Liddell", "a single line"),
        ("Alice\u2029Liddell", "a single line"),
        ("Alice\x85Liddell", "a single line"),
        ("Alice\x07", "control characters such as U+0007"),
        ("Alice\x00", "control characters such as U+0000"),
        ("Alice\x7f", "control characters such as U+007F"),
        ("Alice\uffff", "U+FFFF, which is not a character"),
    ],
)
def test_names_refuse_controls_and_invisible_characters(name: str, reason: str) -> None:
    problem = name_character_problem(name)
    assert problem is not None
    assert reason in problem
    assert problem.startswith("a display name ")


@pytest.mark.parametrize(
    "name",
    [
        "Alice Liddell",
        "Alice 🐦 アリス",
        "\U0001f469\u200d\U0001f4bb Alice",  # woman technologist: ZWJ sequence
        "\U0001f9d1\U0001f3fd\u200d\U0001f4bb",  # with a skin tone
        "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag: VS16 then ZWJ
        "I \u2764\ufe0f tea",  # emoji presentation
        "\u263a\ufe0e text smile",  # text presentation
        "1\ufe0f\u20e3 first",  # keycap
        "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f fan",  # England
        "\u845b\U000e0100\u98fe",  # an ideographic variation sequence
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian ZWNJ between joining letters
        "\u0915\u094d\u200d\u0937",  # Devanagari ZWJ after a virama
        "Zoë\u00a0Ødegaard",
        "\u0639\u0644\u064a",  # Arabic
    ],
)
def test_names_keep_emoji_sequences_and_scripts_that_need_joiners(name: str) -> None:
    assert name_character_problem(name) is None


def test_refused_name_characters_can_be_removed_for_display() -> None:
    assert without_refused_name_characters("\u202eAli\u200bce\u2028L\x07.") == "Alice L."
    kept = "\U0001f469\u200d\U0001f4bb Alice \u2764\ufe0f"
    assert without_refused_name_characters(kept) == kept
    assert without_refused_name_characters("\u200b\u3164") == ""


def test_bios_refuse_control_and_invalid_characters_but_keep_lines() -> None:
    assert bio_character_problem("first line\nsecond\tline \u202bRTL\u202c") is None
    assert bio_character_problem("bell\x07") == (
        "a bio cannot contain control characters such as U+0007"
    )
    assert bio_character_problem("a\ufeffb") is not None


# -- hashtag keys ----------------------------------------------------------------

FULLWIDTH_DJANGO = "\uff24\uff2a\uff21\uff2e\uff27\uff2f"


def test_hashtag_keys_use_unicode_case_folding() -> None:
    assert normalize_hashtag("Straße") == normalize_hashtag("STRASSE") == "strasse"
    assert normalize_hashtag("STRAẞE") == "strasse"
    assert normalize_hashtag("ΣΊΣΥΦΟΣ") == normalize_hashtag("σίσυφος")


def test_hashtag_keys_are_nfkc_normalised() -> None:
    assert normalize_hashtag(FULLWIDTH_DJANGO) == "django"
    assert normalize_hashtag("Cafe\u0301") == normalize_hashtag("Café")  # combining accent
    assert normalize_hashtag("ﬁle") == "file"  # ligature


@pytest.mark.parametrize(
    "tag", ["Straße", FULLWIDTH_DJANGO, "İstanbul", "\ufdfa", "x\u200cy", "ǅemal", "日本"]
)
def test_a_hashtag_key_is_stable_and_is_itself_a_hashtag(tag: str) -> None:
    key = normalize_hashtag(tag)
    assert normalize_hashtag(key) == key
    assert is_valid_hashtag(key)


# -- mentions and URLs -----------------------------------------------------------


def test_mentions_inside_urls_give_way_to_the_url() -> None:
    text = "see https://example.com/?a=@bob and @carol"
    assert [m.text for m in extract_mentions(text)] == ["bob", "carol"]  # as twitter-text
    found = [(kind, entity.text) for kind, entity in extract_entities(text)]
    assert found == [("url", "https://example.com/?a=@bob"), ("mention", "carol")]

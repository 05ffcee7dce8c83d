"""Chirp's text rules: what counts as a mention, reply, hashtag or URL in a post,
how long a post is, which usernames and hashtags are valid, and which
characters a post, a display name or a bio may hold.

Pure functions, no I/O. Mentions, replies and hashtags are a port of the
twitter-text reference algorithm (its JS/Java extractors); URLs and the weighted
length come from the ``twitter-text-parser`` package (an ASCII text is counted
without its emoji scan, to the same result). All indices count Unicode
code points, which is what Python ``str`` indices already are. The character
rules are described in docs/decisions/text-and-name-characters.md.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import idna
import regex  # type: ignore[import-untyped, unused-ignore]
from twitter_text import extract_urls_with_indices, parse_tweet
from twitter_text.config import config as twitter_text_config

__all__ = [
    "MAX_WEIGHTED_LENGTH",
    "Entity",
    "bio_character_problem",
    "extract_entities",
    "extract_hashtags",
    "extract_mentions",
    "extract_reply_username",
    "extract_urls",
    "is_valid_hashtag",
    "is_valid_length",
    "is_valid_username",
    "name_character_problem",
    "normalize_hashtag",
    "post_text_problem",
    "weighted_length",
    "without_refused_name_characters",
]

MAX_WEIGHTED_LENGTH = 280


@dataclass(frozen=True)
class Entity:
    """A span of a post: ``text`` is the value without its ``@``/``#`` sign (a URL
    as written), ``start``/``end`` the code point span including the sign."""

    text: str
    start: int
    end: int


_AT_SIGNS = "@\uff20"  # "@" and FULLWIDTH COMMERCIAL AT
_HASH_SIGNS = "#\uff03"  # "#" and FULLWIDTH NUMBER SIGN
_SPACES = "\x09-\x0d\x20\x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_LATIN_ACCENTS = (
    "\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
    "\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)

# The reference matches the character before the "@" (rather than looking behind),
# so consecutive matches cannot share it; finditer keeps that behaviour.
_MENTION_OR_LIST = regex.compile(
    rf"(?:^|[^a-zA-Z0-9_!#$%&*{_AT_SIGNS}]|(?:^|[^a-zA-Z0-9_+~.-])(?:rt|RT|rT|Rt):?)"
    rf"[{_AT_SIGNS}]"
    r"(?P<name>[a-zA-Z0-9_]{1,20})"
    r"(?P<list>/[a-zA-Z][a-zA-Z0-9_\-]{0,24})?"
)
_REPLY = regex.compile(rf"^[{_SPACES}]*[{_AT_SIGNS}](?P<name>[a-zA-Z0-9_]{{1,20}})")
# Text right after a mention that voids it: an e-mail-like "@", an accented Latin
# letter (the name really goes on), or "://" (it was a URL scheme).
_END_MENTION = regex.compile(rf"[{_AT_SIGNS}{_LATIN_ACCENTS}]|://")

_HASHTAG_SPECIALS = (
    "_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c\u30a0\u30fb"
    "\u3003\u0f0b\u0f0c\xb7"
)
_HASHTAG_ALPHA = r"[\p{L}\p{M}]"
_HASHTAG_ALNUM = rf"[\p{{L}}\p{{M}}\p{{Nd}}{_HASHTAG_SPECIALS}]"
# The boundary before the sign is the start of the text, a variation selector
# (emoji presentation; these are marks, so the next rule would refuse them), or
# any one character that is neither hashtag text nor "&" (as in "&#39;").
# A "#" followed by U+FE0F or U+20E3 is the keycap emoji, not a hashtag.
_HASHTAG = regex.compile(
    rf"(?:^|[\ufe0e\ufe0f]|(?!{_HASHTAG_ALNUM}|&).)"
    rf"[{_HASH_SIGNS}](?![\ufe0f\u20e3])"
    rf"(?P<tag>{_HASHTAG_ALNUM}*{_HASHTAG_ALPHA}{_HASHTAG_ALNUM}*)",
    regex.DOTALL,
)
_END_HASHTAG = regex.compile(rf"[{_HASH_SIGNS}]|://")

_USERNAME = regex.compile(r"[A-Za-z0-9_]{1,15}")


def _mentions_or_lists(text: str) -> list[tuple[Entity, bool]]:
    """Every @mention or @list in ``text``, each with whether it is a list."""
    found: list[tuple[Entity, bool]] = []
    for match in _MENTION_OR_LIST.finditer(text):
        if _END_MENTION.match(text, match.end()):
            continue
        start = match.start("name") - 1
        found.append((Entity(match["name"], start, match.end()), match["list"] is not None))
    return found


def extract_mentions(text: str) -> list[Entity]:
    """The @screen_name mentions in ``text`` (not @user/list references), in order."""
    return [entity for entity, is_list in _mentions_or_lists(text) if not is_list]


def extract_reply_username(text: str) -> str | None:
    """The screen name ``text`` replies to: an @mention that opens the text, after
    nothing but spaces; ``None`` when the text is not a reply."""
    match = _REPLY.match(text)
    if match is None or _END_MENTION.match(text, match.end()):
        return None
    return str(match["name"])


def extract_urls(text: str) -> list[Entity]:
    """The URLs in ``text`` (with or without a scheme), in order."""
    return [
        Entity(found["url"], found["indices"][0], found["indices"][1])
        for found in extract_urls_with_indices(text)
    ]


def extract_hashtags(text: str) -> list[Entity]:
    """The #hashtags (also with the fullwidth U+FF03 sign) in ``text``, in order;
    hashtags that are part of a URL (``example.com/#anchor``) are left out."""
    tags: list[Entity] = []
    for match in _HASHTAG.finditer(text):
        if _END_HASHTAG.match(text, match.end()):
            continue
        tags.append(Entity(match["tag"], match.start("tag") - 1, match.end()))
    if not tags:
        return tags
    urls = extract_urls(text)
    if not urls:
        return tags
    kept = _without_overlaps([("hashtag", tag) for tag in tags] + [("url", url) for url in urls])
    return [entity for kind, entity in kept if kind == "hashtag"]


def extract_entities(text: str) -> list[tuple[str, Entity]]:
    """The URLs, hashtags and mentions of ``text`` as ``(kind, entity)`` pairs in
    order, ``kind`` being ``"url"``, ``"hashtag"`` or ``"mention"``. As
    twitter-text's extractEntitiesWithIndices, an entity that overlaps an
    earlier one is dropped: a mention inside a URL (``example.com/?a=@bob``)
    is part of the URL."""
    found = [("url", url) for url in extract_urls(text)]
    found += [("hashtag", tag) for tag in extract_hashtags(text)]
    found += [("mention", mention) for mention in extract_mentions(text)]
    return _without_overlaps(found)


def _without_overlaps(entities: list[tuple[str, Entity]]) -> list[tuple[str, Entity]]:
    """The reference's overlap rule: sort by start (a stable sort keeps the
    given order at equal starts) and drop each entity that begins before the
    last kept one ends."""
    kept: list[tuple[str, Entity]] = []
    for kind, entity in sorted(entities, key=lambda pair: pair[1].start):
        if not kept or entity.start >= kept[-1][1].end:
            kept.append((kind, entity))
    return kept


def weighted_length(text: str) -> int:
    """The length of ``text`` as Twitter counts it: most CJK and emoji count 2, any
    URL counts 23, other characters 1."""
    if text.isascii():
        return _ascii_weighted_length(text)
    return int(parse_tweet(text).weightedLength)


_LINE_END = regex.compile(r"\r\n|\r|\n")
_URL_LENGTH = int(twitter_text_config["defaults"]["transformed_url_length"])


def _ascii_weighted_length(text: str) -> int:
    """``parse_tweet``'s weighted length of an ASCII text, without its emoji
    scan (most of its time, and no emoji is ASCII): a line end counts 1
    (``\r\n`` too), a URL 23, any other character 1.
    tests/unit/test_weighted_length_ascii.py holds it to ``parse_tweet``."""
    normalized = _LINE_END.sub("\n", text)
    urls = [entity["url"] for entity in extract_urls_with_indices(normalized)]
    return len(normalized) - sum(len(url) for url in urls) + _URL_LENGTH * len(urls)


def is_valid_length(text: str) -> bool:
    """Whether ``text`` may be posted: not empty, at most ``MAX_WEIGHTED_LENGTH``
    weighted characters and no invalid characters."""
    return bool(parse_tweet(text).valid)


def is_valid_username(name: str) -> bool:
    """Whether ``name`` (without ``@``) is a valid screen name: 1 to 15 ASCII
    letters, digits or underscores."""
    return _USERNAME.fullmatch(name) is not None


def is_valid_hashtag(tag: str) -> bool:
    """Whether ``tag`` (without ``#``) is a hashtag on its own: ``#tag`` yields
    exactly that one hashtag."""
    if not tag:
        return False
    found = extract_hashtags("#" + tag)
    return len(found) == 1 and found[0].text == tag


def normalize_hashtag(tag: str) -> str:
    """The case-insensitive key of a hashtag: ``Django``, ``django`` and a
    fullwidth ``DJANGO`` are one feed, and so are ``Straße`` and ``STRASSE``.

    The key is Unicode's NFKC_Casefold of the tag (compatibility forms
    unified, case folded, default-ignorable characters such as U+200C
    removed), so that it is stable: the key of a key is itself. The few tags
    whose NFKC form is no hashtag (the ligature U+FDFA becomes four words)
    keep their NFC case fold instead, so a key always names a tag page."""
    key = _nfkc_casefold(tag)
    if is_valid_hashtag(key):
        return key
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", tag).casefold())


def _nfkc_casefold(text: str) -> str:
    # NFKC_Casefold(X) = NFKC(toCasefold(NFKD(X))) without default-ignorables;
    # NFKC after casefold again, since folding can denormalise (U+0130).
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKD", text).casefold())
    return _DEFAULT_IGNORABLE.sub("", folded)


# -- which characters a post, a name or a bio may hold -----------------------------

# twitter-text's invalid characters (its hasInvalidCharacters): a byte order
# mark and two noncharacters. ``twitter-text-parser`` checks them only where
# its length count looks, not inside URLs or emoji, so Chirp checks them itself.
_TWITTER_INVALID = regex.compile("[\ufffe\ufeff\uffff]")
# C0 controls but tab, line feed and carriage return; DEL; C1 controls.
_POST_CONTROL = regex.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = regex.compile(r"\p{Cs}")
_DEFAULT_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")
# What shows nothing: default-ignorable code points (zero width characters,
# Hangul fillers, variation selectors, tags...), format characters other than
# the visible prepended marks (U+0600...), and the blank braille pattern.
_INVISIBLE = regex.compile(
    r"(?!\p{Prepended_Concatenation_Mark})[\p{Default_Ignorable_Code_Point}\p{Cf}\u2800]"
)
_BLANK = regex.compile(r"[\s\p{Z}]")
_LINE_BREAK_OR_TAB = regex.compile(r"[\t\n\x0b\x0c\r\x85\u2028\u2029]")
_CONTROL = regex.compile(r"\p{Cc}")
_BIDI_CONTROL = regex.compile(r"\p{Bidi_Control}")
_NOT_A_CHARACTER = regex.compile(r"[\p{Noncharacter_Code_Point}\p{Cs}]")
# Invisible characters that are part of what a name shows, where they are:
# - a ZWJ inside an emoji ZWJ sequence (UAX #29 GB11: pictograph, extenders, ZWJ,
#   pictograph);
# - a variation selector after an emoji, a symbol or a letter of a script with
#   variants (CJK ideographs, Mongolian), or in a keycap (1, U+FE0F, U+20E3);
# - tag characters in an emoji tag sequence (the flags of England, Scotland...).
# ZWJ and ZWNJ between letters follow IDNA's CONTEXTJ rule (``_joiner_allowed``).
_EMOJI_ZWJ = regex.compile(r"(?<=\p{ExtPict}\p{GCB=Extend}*)\u200d(?=\p{ExtPict})")
_VARIATION = regex.compile(
    r"(?<=[\p{ExtPict}\p{So}\p{Lo}])\p{Variation_Selector}|(?<=[0-9#*])\ufe0f(?=\u20e3)"
)
_EMOJI_TAG = regex.compile(r"(?<=\p{ExtPict}[\U000e0020-\U000e007e]*)[\U000e0020-\U000e007f]")


def _describe(character: str) -> str:
    name = unicodedata.name(character, "")
    code = f"U+{ord(character):04X}"
    return f"{code} ({name})" if name else code


def _forbidden_in_text(text: str, what: str) -> str | None:
    """The problem of the first character no text may hold, or None."""
    control = _POST_CONTROL.search(text)
    if control:
        return f"{what} cannot contain control characters such as U+{ord(control[0]):04X}"
    invalid = _TWITTER_INVALID.search(text) or _SURROGATE.search(text)
    if invalid:
        return f"{what} cannot contain {_describe(invalid[0])}"
    return None


def post_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be posted, in words for its author, or None when it
    can. The one rule of a post's text, checked by ``Tweet.post`` and shown
    by the compose box: not empty, no control characters (tab and line
    breaks are text), none of twitter-text's invalid characters, something
    visible, and at most ``MAX_WEIGHTED_LENGTH`` weighted characters."""
    if not isinstance(text, str) or all(_BLANK.match(ch) for ch in text):
        return "a post cannot be empty"
    problem = _forbidden_in_text(text, "a post")
    if problem:
        return problem
    if all(_BLANK.match(ch) or _INVISIBLE.match(ch) for ch in text):
        invisible = next(ch for ch in text if _INVISIBLE.match(ch))
        return (
            "a post needs some visible text; this one has only spaces and invisible "
            f"characters such as {_describe(invisible)}"
        )
    length = weighted_length(text)
    if length > MAX_WEIGHTED_LENGTH:
        return (
            f"a post may be at most {MAX_WEIGHTED_LENGTH} characters long; this one counts {length}"
        )
    return None


def bio_character_problem(bio: str) -> str | None:
    """Why ``bio`` holds a character it may not, or None: a bio is text like a
    post's (several lines, directional marks), so it follows the same
    character rule."""
    return _forbidden_in_text(bio, "a bio")


def _joiner_allowed(name: str, index: int) -> bool:
    """Whether the ZWJ or ZWNJ at ``index`` is needed where it is: inside an
    emoji sequence, or after a virama or between joining letters (Persian)."""
    if _EMOJI_ZWJ.match(name, index):
        return True
    try:
        return bool(idna.valid_contextj(name, index))
    except (ValueError, IndexError):
        return False


def _refused_in_name(name: str) -> Iterator[tuple[int, str]]:
    """Each character a display name may not hold, with its index and why."""
    for index, character in enumerate(name):
        code = f"U+{ord(character):04X}"
        if _LINE_BREAK_OR_TAB.match(character):
            yield index, "a display name must be a single line"
        elif _CONTROL.match(character):
            yield index, f"a display name cannot contain control characters such as {code}"
        elif _BIDI_CONTROL.match(character):
            yield (
                index,
                (
                    "a display name cannot contain direction controls such as "
                    f"{_describe(character)}: they would reorder the text around it"
                ),
            )
        elif _NOT_A_CHARACTER.match(character):
            yield index, f"a display name cannot contain {code}, which is not a character"
        elif _INVISIBLE.match(character) and not _needed_where_it_is(name, index):
            yield (
                index,
                (
                    "a display name cannot contain invisible characters such as "
                    + _describe(character)
                ),
            )


def _needed_where_it_is(name: str, index: int) -> bool:
    """Whether the invisible character at ``index`` is part of what ``name``
    shows: a joiner where it joins, a variation selector or tag where it
    selects."""
    if name[index] in "\u200c\u200d":
        return _joiner_allowed(name, index)
    return bool(_VARIATION.match(name, index) or _EMOJI_TAG.match(name, index))


def name_character_problem(name: str) -> str | None:
    """Why ``name`` cannot be a display name because of a character it holds, or
    None: no line breaks, control characters, direction controls or invisible
    characters, except the joiners and variation selectors that emoji and
    some scripts need."""
    for _, problem in _refused_in_name(name):
        return problem
    return None


def without_refused_name_characters(name: str) -> str:
    """``name`` without the characters ``name_character_problem`` refuses, for
    showing names stored before that rule; a line break or tab becomes a space."""
    refused = {index for index, _ in _refused_in_name(name)}
    return "".join(
        (" " if _LINE_BREAK_OR_TAB.match(character) else "") if index in refused else character
        for index, character in enumerate(name)
    )

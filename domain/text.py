"""Chirp's text rules: what counts as a mention, reply, hashtag or URL in a post,
how long a post is, and which usernames and hashtags are valid.

Pure functions, no I/O. Mentions, replies and hashtags are a port of the
twitter-text reference algorithm (its JS/Java extractors); URLs and the weighted
length come from the ``twitter-text-parser`` package. All indices count Unicode
code points, which is what Python ``str`` indices already are.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex  # type: ignore[import-untyped, unused-ignore]
from twitter_text import extract_urls_with_indices, parse_tweet

__all__ = [
    "MAX_WEIGHTED_LENGTH",
    "Entity",
    "extract_hashtags",
    "extract_mentions",
    "extract_reply_username",
    "extract_urls",
    "is_valid_hashtag",
    "is_valid_length",
    "is_valid_username",
    "normalize_hashtag",
    "weighted_length",
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
    # The reference's overlap rule: sort all entities by start (a hashtag before a
    # URL at the same start) and drop each one that begins before the last kept ends.
    entities = sorted(
        [(tag, True) for tag in tags] + [(url, False) for url in urls],
        key=lambda pair: pair[0].start,
    )
    kept: list[tuple[Entity, bool]] = [entities[0]]
    for entity, is_tag in entities[1:]:
        if entity.start >= kept[-1][0].end:
            kept.append((entity, is_tag))
    return [entity for entity, is_tag in kept if is_tag]


def weighted_length(text: str) -> int:
    """The length of ``text`` as Twitter counts it: most CJK and emoji count 2, any
    URL counts 23, other characters 1."""
    return int(parse_tweet(text).weightedLength)


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
    """The case-insensitive key of a hashtag: ``Django`` and ``django`` are one feed."""
    return tag.lower()

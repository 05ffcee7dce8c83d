"""The Tweet aggregate: a short post, checked by Twitter's weighted length, with its entities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTweetText, NotTheAuthor, TweetAlreadyDeleted
from domain.text import extract_entities, normalize_hashtag, post_text_problem
from domain.user import username_key

_POST_KEY_NAMESPACE = uuid5(NAMESPACE_URL, "https://chirp.example/posts")


@dataclass(frozen=True)
class TextEntity:
    """A hashtag, mention or URL found in a post, at code point indices [start, end)."""

    kind: str  # "hashtag" | "mention" | "url"
    text: str  # tag without '#', canonical username without '@', or the URL
    start: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "start": self.start, "end": self.end}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextEntity:
        return cls(str(data["kind"]), str(data["text"]), int(data["start"]), int(data["end"]))


def check_text(text: str) -> None:
    """Refuse a text ``domain.text.post_text_problem`` refuses, with its reason."""
    problem = post_text_problem(text)
    if problem is not None:
        raise InvalidTweetText(problem)


def find_entities(text: str, known_usernames: dict[str, str]) -> list[TextEntity]:
    """The entities of ``text``, in order, none overlapping another (a mention
    or hashtag inside a URL is part of the URL). Mentions are kept only for
    users in ``known_usernames`` (lower-cased name -> canonical name), under
    their canonical name, so that a replay resolves them exactly as the post
    did."""
    entities = []
    for kind, found in extract_entities(text):
        value = found.text
        if kind == "mention":
            canonical = known_usernames.get(username_key(found.text))
            if canonical is None:
                continue
            value = canonical
        entities.append(TextEntity(kind, value, found.start, found.end))
    return entities


def hashtags_of(entities: list[TextEntity]) -> list[str]:
    """Normalised hashtags, once each, in order of first use."""
    return list(dict.fromkeys(normalize_hashtag(e.text) for e in entities if e.kind == "hashtag"))


def mentions_of(entities: list[TextEntity]) -> list[str]:
    """Canonical usernames mentioned, once each, in order of first mention."""
    return list(dict.fromkeys(e.text for e in entities if e.kind == "mention"))


def post_id_for_key(author: str, key: UUID) -> UUID:
    """The id of the post ``author`` sends under ``key`` (a form's token): the
    same author and key always name the same post, so the event store refuses
    a second one, whichever process sends it."""
    return uuid5(_POST_KEY_NAMESPACE, f"{username_key(author)}/{key}")


def mentioned_usernames_in(text: str) -> list[str]:
    """Every @name written in ``text`` (outside URLs), before resolving them to users."""
    return [found.text for kind, found in extract_entities(text) if kind == "mention"]


class Tweet(Aggregate):
    """A post. Only its author may delete it, and only once."""

    TOPIC = "chirp:Tweet"

    class Event(Aggregate.Event):
        TOPIC = "chirp:Tweet.Event"

    class Posted(Aggregate.Created):
        TOPIC = "chirp:TweetPosted"
        author: str
        text: str
        posted_at: datetime
        entities: list[dict[str, Any]]

    class Deleted(Aggregate.Event):
        TOPIC = "chirp:TweetDeleted"
        author: str

    @classmethod
    def post(
        cls,
        author: str,
        text: str,
        known_usernames: dict[str, str],
        posted_at: datetime | None = None,
        post_id: UUID | None = None,
    ) -> Tweet:
        """A new post; its id is ``post_id`` when given, else a random one."""
        check_text(text)
        posted_at = (posted_at or datetime.now(UTC)).astimezone(UTC)
        entities = [entity.as_dict() for entity in find_entities(text, known_usernames)]
        # eventsourcing's explicit way of creating an aggregate: the id given
        # (None: one made by ``create_id``, a random UUID).
        return cls._create(
            cls.Posted,
            id=post_id,
            author=author,
            text=text,
            posted_at=posted_at,
            entities=entities,
        )

    @event(Posted)
    def __init__(
        self, author: str, text: str, posted_at: datetime, entities: list[dict[str, Any]]
    ) -> None:
        self.author = author
        self.text = text
        self.posted_at = posted_at
        self.entities = [TextEntity.from_dict(data) for data in entities]
        self.is_deleted = False

    @property
    def hashtags(self) -> list[str]:
        return hashtags_of(self.entities)

    @property
    def mentions(self) -> list[str]:
        return mentions_of(self.entities)

    def delete(self, by: str) -> None:
        if username_key(by) != username_key(self.author):
            raise NotTheAuthor("only its author can delete a post")
        if self.is_deleted:
            raise TweetAlreadyDeleted("this post was already deleted")
        self._delete(self.author)

    @event(Deleted)
    def _delete(self, author: str) -> None:
        self.is_deleted = True

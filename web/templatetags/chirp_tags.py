"""Template tags: render an activity by its verb, link a post's entities safely,
and show display names so that they cannot disguise the handle beside them."""

from __future__ import annotations

from typing import Any, Protocol

from django import template
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from application.queries import FeedItem, Notification
from domain.text import normalize_hashtag, without_refused_name_characters
from domain.tweet import TextEntity

register = template.Library()

FIRST_STRONG_ISOLATE = "\u2068"
POP_DIRECTIONAL_ISOLATE = "\u2069"


class Person(Protocol):
    @property
    def username(self) -> str: ...

    @property
    def display_name(self) -> str: ...


@register.simple_tag(takes_context=True)
def render_activity(context: template.Context, activity: FeedItem | Notification) -> SafeString:
    """Render through ``activity/<verb>.html``, as stream-django's tag does."""
    verb = "tweet" if isinstance(activity, FeedItem) else activity.kind
    return mark_safe(
        render_to_string(
            f"activity/{verb}.html",
            {"activity": activity, "user": context.get("user"), "request": context.get("request")},
        )
    )


def _entity_link(entity: TextEntity, shown: str) -> str:
    if entity.kind == "hashtag":
        href = reverse("tag", args=[normalize_hashtag(entity.text)])
        return format_html('<a class="hashtag" href="{}">{}</a>', href, shown)
    if entity.kind == "mention":
        href = reverse("profile", args=[entity.text])
        return format_html('<a class="mention" href="{}">{}</a>', href, shown)
    url = (
        entity.text
        if entity.text.lower().startswith(("http://", "https://"))
        else ("http://" + entity.text)
    )
    return format_html(
        '<a class="url" href="{}" rel="nofollow noopener noreferrer" target="_blank">{}</a>',
        url,
        shown,
    )


def _isolated_entity_link(entity: TextEntity, shown: str) -> str:
    """The link in its own ``<bdi>``: ``@bob`` reads ``@bob`` in right-to-left
    text, or after a direction override, as well as anywhere else."""
    return format_html("<bdi>{}</bdi>", _entity_link(entity, shown))


@register.filter
def linkify(item: FeedItem) -> SafeString:
    """The post's text, escaped, with its hashtags, mentions and URLs linked.
    Entity indices count code points, as Python string indices do."""
    text = item.text
    parts: list[str] = []
    position = 0
    for entity in sorted(item.entities, key=lambda e: e.start):
        if entity.start < position or entity.end > len(text):
            continue  # overlapping or out of range: leave as plain text
        parts.append(escape(text[position : entity.start]))
        parts.append(_isolated_entity_link(entity, text[entity.start : entity.end]))
        position = entity.end
    parts.append(escape(text[position:]))
    return mark_safe("".join(parts))


@register.filter
def shown_name(person: Person) -> str:
    """The display name to show: without the characters today's rule refuses
    in names (a name stored before it may hold them), or the username when
    nothing visible is left. Templates put it in a ``<bdi>``."""
    return without_refused_name_characters(person.display_name).strip() or person.username


@register.filter
def isolated(text: str) -> str:
    """``text`` between FSI and PDI, for plain text such as a page title where
    no ``<bdi>`` can isolate it from what follows."""
    return f"{FIRST_STRONG_ISOLATE}{text}{POP_DIRECTIONAL_ISOLATE}"


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key)

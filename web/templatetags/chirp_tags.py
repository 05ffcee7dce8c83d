"""Template tags: render an activity by its verb, link a post's entities safely,
and show display names so that they cannot disguise the handle beside them;
say how long ago something happened.

A post's HTML, a shown name and a "5 minutes ago" are pure functions of what
they are made from, and the same posts and names come back page after page:
each is kept once made, in a bounded cache per process (``functools.lru_cache``),
keyed by everything it depends on (docs/decisions/web-server-workers.md).
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any, Protocol

from django import template
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince
from django.utils.translation import get_language

from application.queries import FeedItem, Notification
from domain.text import normalize_hashtag, without_refused_name_characters
from domain.tweet import TextEntity

register = template.Library()

FIRST_STRONG_ISOLATE = "\u2068"
POP_DIRECTIONAL_ISOLATE = "\u2069"
# How many rendered posts, shown names and "... ago" texts a process keeps
# (a rendered post takes about a kilobyte).
POSTS_KEPT = 10_000
NAMES_KEPT = 10_000
TIMES_KEPT = 10_000
_SETTING = "chirp_tags.setting"  # its key in a template's render context


class Person(Protocol):
    @property
    def username(self) -> str: ...

    @property
    def display_name(self) -> str: ...


@register.simple_tag(takes_context=True)
def render_activity(context: template.Context, activity: FeedItem | Notification) -> SafeString:
    """Render through ``activity/<verb>.html``, as stream-django's tag does."""
    if isinstance(activity, FeedItem):
        return _rendered_post(activity, relative_time(activity.posted_at), *_setting(context))
    return mark_safe(
        render_to_string(
            f"activity/{activity.kind}.html",
            {"activity": activity, "user": context.get("user"), "request": context.get("request")},
        )
    )


def _setting(context: template.Context) -> tuple[str, str | None, str]:
    """The script prefix, language and time zone in force, read once per
    template (a feed renders many posts)."""
    setting: tuple[str, str | None, str] | None = context.render_context.get(_SETTING)
    if setting is None:
        setting = (get_script_prefix(), get_language(), timezone.get_current_timezone_name())
        context.render_context[_SETTING] = setting
    return setting


@functools.lru_cache(maxsize=POSTS_KEPT)
def _rendered_post(
    item: FeedItem, ago: str, script_prefix: str, language: str | None, time_zone: str
) -> SafeString:
    """``activity/tweet.html`` for ``item``. It reads nothing but the item and
    ``ago``; its links start with the script prefix, and its dates and words
    follow the language and time zone in force: all of them are the key."""
    return mark_safe(render_to_string("activity/tweet.html", {"activity": item, "ago": ago}))


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
    return _shown_name(person.display_name, person.username)


@functools.lru_cache(maxsize=NAMES_KEPT)
def _shown_name(display_name: str, username: str) -> str:
    return without_refused_name_characters(display_name).strip() or username


@register.filter
def isolated(text: str) -> str:
    """``text`` between FSI and PDI, for plain text such as a page title where
    no ``<bdi>`` can isolate it from what follows."""
    return f"{FIRST_STRONG_ISOLATE}{text}{POP_DIRECTIONAL_ISOLATE}"


@register.filter
def relative_time(moment: datetime) -> str:
    """"now" under a minute ago (or a moment ahead of this server's clock),
    otherwise Django's ``timesince`` and "ago": "5 minutes ago"."""
    return time_since(moment, timezone.now() if timezone.is_aware(moment) else datetime.now())


def time_since(moment: datetime, now: datetime) -> str:
    """``relative_time`` at ``now``."""
    if now - moment < timedelta(minutes=1):
        return "now"
    return _minutes_ago(moment, (now - moment) // timedelta(minutes=1))


@functools.lru_cache(maxsize=TIMES_KEPT)
def _minutes_ago(moment: datetime, minutes: int) -> str:
    """``timesince`` counts whole minutes at most, and every boundary it
    counts (an hour, a day, a month after ``moment``...) is a whole number
    of minutes after it: so its text is the same all through each minute."""
    return f"{timesince(moment, moment + timedelta(minutes=minutes))} ago"


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key)

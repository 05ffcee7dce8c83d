"""Selectors: the reads a page needs, assembled from the application's queries."""

from __future__ import annotations

from dataclasses import dataclass

from application.catalog import TrendingTag, UserView
from application.service import Chirp

WHO_TO_FOLLOW = 5
TRENDING = 8


@dataclass(frozen=True)
class Sidebar:
    trending: list[TrendingTag]
    who_to_follow: list[UserView]


def following_of(chirp: Chirp, viewer: str | None) -> set[str]:
    """Lower-cased usernames the viewer follows (none when logged out)."""
    return set() if viewer is None else chirp.commands.get_user(viewer).following


def sidebar(chirp: Chirp, viewer: str | None, following: set[str] | None = None) -> Sidebar:
    """Trending tags and who to follow; pass ``following`` when the page has
    already loaded it, so the viewer is loaded once per request."""
    trending = chirp.queries.trending_hashtags(limit=TRENDING)
    if following is None:
        following = following_of(chirp, viewer)
    suggestions = chirp.queries.who_to_follow(viewer or "", following, WHO_TO_FOLLOW)
    return Sidebar(trending, suggestions)

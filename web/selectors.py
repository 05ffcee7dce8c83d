"""Selectors: the reads a page needs, assembled from the application's queries."""

from __future__ import annotations

from dataclasses import dataclass

from application.catalog import TrendingTag, UserView
from application.service import Chirp
from domain.user import username_key

WHO_TO_FOLLOW = 5
TRENDING = 8


@dataclass(frozen=True)
class Sidebar:
    trending: list[TrendingTag]
    who_to_follow: list[UserView]


def sidebar(chirp: Chirp, viewer: str | None) -> Sidebar:
    trending = chirp.queries.trending_hashtags(limit=TRENDING)
    if viewer is None:
        return Sidebar(trending, chirp.queries.who_to_follow("", (), WHO_TO_FOLLOW))
    following = chirp.commands.get_user(viewer).following
    return Sidebar(trending, chirp.queries.who_to_follow(viewer, following, WHO_TO_FOLLOW))


def is_following(chirp: Chirp, viewer: str | None, username: str) -> bool:
    if viewer is None or username_key(viewer) == username_key(username):
        return False
    return chirp.commands.get_user(viewer).follows(username)

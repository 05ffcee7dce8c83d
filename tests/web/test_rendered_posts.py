"""Posts are rendered once and kept (web/templatetags/chirp_tags.py): what a
page shows must still be what it would show if each were rendered anew."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import User
from django.test import Client
from django.urls import set_script_prefix
from django.utils.timesince import timesince
from hypothesis import given
from hypothesis import strategies as st

from application.service import Chirp
from web.templatetags.chirp_tags import time_since

MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@given(
    moment=MOMENTS,
    later=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=3 * 366)),
)
def test_how_long_ago_is_timesince_at_every_second_of_a_minute(
    moment: datetime, later: timedelta
) -> None:
    """Kept per whole minute since ``moment``; timesince's own text at any
    instant (month and year boundaries included)."""
    now = moment + later
    assert time_since(moment, now) == f"{timesince(moment, now)} ago"


def test_a_new_display_name_shows_on_the_next_page(
    logged_in: Callable[[str], Client], person: Callable[..., User], chirp: Chirp
) -> None:
    client = logged_in("alice")
    person("bob", "Bob Before")
    chirp.follow("alice", "bob")
    chirp.post("bob", "a post rendered twice")
    assert "Bob Before" in client.get("/").content.decode()

    chirp.update_profile("bob", "Bob After", "")

    page = client.get("/").content.decode()
    assert "Bob After" in page
    assert "Bob Before" not in page


def test_links_follow_the_script_prefix_of_each_request(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    """A site served under a path (SCRIPT_NAME) links posts under it."""
    client = logged_in("alice")
    chirp.post("alice", "linked #everywhere")

    set_script_prefix("/chirp/")  # as Django's WSGI handler does for SCRIPT_NAME=/chirp
    try:
        under_path = client.get("/").content.decode()
    finally:
        set_script_prefix("/")
    at_root = client.get("/").content.decode()

    assert 'href="/chirp/tags/everywhere"' in under_path
    assert 'href="/tags/everywhere"' in at_root
    assert 'href="/chirp/tags/everywhere"' not in at_root

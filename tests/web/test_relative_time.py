"""The ``relative_time`` filter: how long ago something happened, as posts show it."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from web.templatetags.chirp_tags import relative_time


def test_under_a_minute_ago_is_now() -> None:
    now = timezone.now()
    assert relative_time(now) == "now"
    assert relative_time(now - timedelta(seconds=45)) == "now"


def test_a_moment_ahead_of_this_servers_clock_is_now() -> None:
    assert relative_time(timezone.now() + timedelta(seconds=20)) == "now"


def test_older_is_how_long_ago() -> None:
    now = timezone.now()
    assert relative_time(now - timedelta(minutes=5, seconds=10)) == "5\xa0minutes ago"
    assert relative_time(now - timedelta(days=2, hours=3)) == "2\xa0days, 3\xa0hours ago"

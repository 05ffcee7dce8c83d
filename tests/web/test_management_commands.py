"""The seeding commands: the demo network and a large synthetic one."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from application.service import Chirp
from application.synthetic import synthetic_network
from web.demo import DEMO_LOGIN, DEMO_PASSWORD, PEOPLE


def test_seed_demo_makes_a_live_network_with_a_working_log_in(chirp: Chirp, client: Client) -> None:
    out = io.StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert f"username {DEMO_LOGIN!r}, password {DEMO_PASSWORD!r}" in out.getvalue()
    assert User.objects.count() == len(PEOPLE)
    posts = sum(chirp.queries.user(name).posts_count for name, _, _ in PEOPLE)
    assert posts == 100
    assert chirp.queries.trending_hashtags()  # hashtags were used today
    assert client.login(username=DEMO_LOGIN, password=DEMO_PASSWORD)
    assert len(chirp.queries.home_timeline(DEMO_LOGIN).items) == 25

    call_command("seed_demo", "--if-empty", stdout=(again := io.StringIO()))
    assert "not seeding" in again.getvalue()
    assert User.objects.count() == len(PEOPLE)


def test_seed_network_applies_a_synthetic_network(chirp: Chirp) -> None:
    out = io.StringIO()
    call_command("seed_network", "60", "--posts-per-user", "2", stdout=out)
    assert '"register": 60' in out.getvalue() and '"post": 120' in out.getvalue()
    total = sum(chirp.queries.user(f"user{i}").posts_count for i in range(1, 61))
    assert total == 120


def test_the_synthetic_follower_distribution_is_heavy_tailed() -> None:
    users = 2000
    followers = Counter(
        op["followee"] for op in synthetic_network(users, posts_per_user=0) if op["op"] == "follow"
    )
    counts = sorted((followers[f"user{i}"] for i in range(1, users + 1)), reverse=True)
    median = counts[users // 2]
    assert counts[0] > 10 * median  # the most followed account dwarfs the typical one
    assert sum(counts[: users // 100]) > 0.05 * sum(counts)  # top 1% hold over 5%


def test_seed_network_refuses_bad_input(chirp: Chirp) -> None:
    with pytest.raises(CommandError, match="at least 2 users"):
        call_command("seed_network", "1")

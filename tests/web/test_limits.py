"""Abuse limits on log-in and sign-up: attempts per minute per IP address and per
attempted username, counted in Django's shared cache, answered with a 429 page."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client, override_settings

from application.service import Chirp
from tests.services import require_redis
from web.settings import attempts_per_minute, caches_from_env

PASSWORD = "a-long-test-password-42"
TOO_MANY = "Too many attempts, try again in a minute."


@pytest.fixture(autouse=True)
def fresh_counts(db: None) -> None:
    cache.clear()


def log_in(
    client: Client, username: str, password: str = "wrong-password", ip: str = "127.0.0.1"
) -> int:
    form = {"username": username, "password": password}
    response = client.post("/login", form, REMOTE_ADDR=ip)
    if response.status_code == 429:
        assert TOO_MANY in response.content.decode()
        assert response["Retry-After"] == "60"
    return response.status_code


def sign_up(client: Client, username: str, ip: str = "127.0.0.1") -> int:
    form = {"username": username, "password": PASSWORD, "password_again": PASSWORD}
    return client.post("/signup", form, REMOTE_ADDR=ip).status_code


@override_settings(CHIRP_LOGIN_LIMIT_PER_USERNAME=3, CHIRP_LOGIN_LIMIT_PER_IP=100)
def test_wrong_passwords_for_one_username_are_limited(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    person("alice")
    person("bob")
    assert [log_in(client, name) for name in ("alice", "ALICE", "Alice")] == [200] * 3
    assert log_in(client, "alice") == 429
    assert log_in(client, "alice", PASSWORD) == 429  # even the right one, for now
    assert log_in(client, "alice", ip="10.0.0.9") == 429  # from anywhere
    assert log_in(client, "bob", PASSWORD) == 302  # another name is not held up
    assert client.get("/login").status_code == 200  # the page itself stays readable


@override_settings(CHIRP_LOGIN_LIMIT_PER_USERNAME=100, CHIRP_LOGIN_LIMIT_PER_IP=3)
def test_attempts_from_one_address_are_limited_whatever_the_names(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    person("alice")
    assert [log_in(client, name) for name in ("ann", "ben", "cat")] == [200] * 3
    assert log_in(client, "dan") == 429
    assert log_in(client, "alice", PASSWORD, ip="10.0.0.2") == 302  # another address


def test_forty_wrong_passwords_are_not_all_answered(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    person("alice")
    with override_settings(CHIRP_LOGIN_LIMIT_PER_USERNAME=5, CHIRP_LOGIN_LIMIT_PER_IP=20):
        statuses = [log_in(client, "alice") for _ in range(40)]
    # Five a minute: the limiter counts in fixed one-minute windows, and the
    # forty attempts may straddle the end of one, which lets five more in.
    assert set(statuses) == {200, 429}
    assert 5 <= statuses.count(200) <= 10, statuses


@override_settings(CHIRP_SIGNUP_LIMIT_PER_IP=2)
def test_sign_ups_from_one_address_are_limited(client: Client, chirp: Chirp) -> None:
    assert sign_up(client, "first") == 302
    other = Client()
    assert sign_up(other, "first") == 400  # taken: a form error, and an attempt
    response = other.post("/signup", {"username": "third"})
    assert response.status_code == 429 and TOO_MANY in response.content.decode()
    assert not User.objects.filter(username="third").exists()
    assert other.get("/signup").status_code == 200  # reading the form is not an attempt
    assert sign_up(other, "third", ip="10.0.0.3") == 302


@override_settings(CHIRP_LOGIN_LIMIT_PER_USERNAME=1)
def test_the_counts_live_in_the_database_every_process_shares(client: Client, chirp: Chirp) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM chirp_cache")
        (before,) = cursor.fetchone()
    log_in(client, "alice")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM chirp_cache")
        (after,) = cursor.fetchone()
    assert after > before


@pytest.fixture
def redis_cache() -> Iterator[str]:
    url = require_redis()
    prefix = f"chirp-test-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def test_the_limit_holds_in_redis_when_it_is_the_cache(
    client: Client, chirp: Chirp, redis_cache: str
) -> None:
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": require_redis(),
            "KEY_PREFIX": redis_cache,
        }
    }
    with override_settings(CACHES=caches, CHIRP_LOGIN_LIMIT_PER_USERNAME=2):
        assert [log_in(client, "alice") for _ in range(3)] == [200, 200, 429]
    stored = list(redis.Redis.from_url(require_redis()).scan_iter(f"{redis_cache}:*"))
    assert stored, "the counts were not kept in Redis"


def test_the_cache_is_django_s_database_unless_a_redis_url_is_given() -> None:
    assert caches_from_env({})["default"] == {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "chirp_cache",
        "OPTIONS": {"MAX_ENTRIES": 100_000},  # not Django's 300: a flood would cull counts
    }
    redis_cache = caches_from_env({"CHIRP_CACHE_URL": "redis://cache:6379/2"})["default"]
    assert redis_cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert redis_cache["LOCATION"] == "redis://cache:6379/2"
    with pytest.raises(ImproperlyConfigured, match="must name one Redis server"):
        caches_from_env({"CHIRP_CACHE_URL": "redis+sentinel://s:26379/mymaster"})


@pytest.mark.parametrize("raw", ["0", "-3", "five", "2.5"])
def test_a_limit_must_be_a_whole_number_from_one(raw: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"at least 1; it is '{raw}'"):
        attempts_per_minute({"CHIRP_SIGNUP_LIMIT_PER_IP": raw}, "CHIRP_SIGNUP_LIMIT_PER_IP", 5)


def test_limits_have_defaults_and_read_the_environment() -> None:
    assert attempts_per_minute({}, "CHIRP_LOGIN_LIMIT_PER_IP", 20) == 20
    environ = {"CHIRP_LOGIN_LIMIT_PER_IP": " 7 "}
    assert attempts_per_minute(environ, "CHIRP_LOGIN_LIMIT_PER_IP", 20) == 7


def test_an_unreachable_redis_cache_is_a_503_page_not_a_500(client: Client, chirp: Chirp) -> None:
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }
    with override_settings(CACHES=caches):
        response = client.post("/login", {"username": "alice", "password": "x"})
    assert response.status_code == 503
    assert "try again in a moment" in response.content.decode()

"""Fixtures for the web tests: a fresh in-memory Chirp per test, and people."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings
from web.runtime import use_chirp
from web.services import sign_up

PASSWORD = "a-long-test-password-42"


@pytest.fixture
def chirp(db: None) -> Iterator[Chirp]:
    instance = build_chirp(Settings(database_url="memory:"))
    previous = use_chirp(instance)
    yield instance
    use_chirp(previous)
    instance.close()


@pytest.fixture
def person(chirp: Chirp) -> Callable[..., User]:
    def make(username: str, display_name: str = "") -> User:
        return sign_up(chirp, username, PASSWORD, display_name)

    return make


@pytest.fixture
def logged_in(client: Client, person: Callable[..., User]) -> Callable[[str], Client]:
    def as_user(username: str) -> Client:
        person(username)
        assert client.login(username=username, password=PASSWORD)
        return client

    return as_user

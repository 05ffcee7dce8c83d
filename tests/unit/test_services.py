"""tests/services.py: a missing redis-server skips the cluster tests with the
reason, or fails them where services are required (CHIRP_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests import services


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CHIRP_REQUIRE_SERVICES", raising=False)
    monkeypatch.delenv("CI", raising=False)
    services._probe_redis_server.cache_clear()
    yield
    services._probe_redis_server.cache_clear()


def version(text: str) -> Any:
    def run(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 0, stdout=text, stderr="")

    return run


def test_no_redis_server_on_path_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="redis-server is not on PATH"):
        services.require_redis_server()


def test_no_redis_server_fails_where_services_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CHIRP_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="redis-server is not on PATH"):
        services.require_redis_server()


def test_a_redis_server_older_than_7_is_skipped_and_7_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/opt/redis-server")
    monkeypatch.setattr(subprocess, "run", version("Redis server v=6.2.14 sha=0"))
    with pytest.raises(pytest.skip.Exception, match=r"Redis 6\.2; the cluster tests need 7\.0\+"):
        services.require_redis_server()
    services._probe_redis_server.cache_clear()
    monkeypatch.setattr(subprocess, "run", version("Redis server v=7.0.15 sha=0"))
    assert services.require_redis_server() == "/opt/redis-server"

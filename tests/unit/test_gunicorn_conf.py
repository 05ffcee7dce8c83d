"""The web server's settings (chirp/gunicorn_conf.py): counts, and the
worker layouts it refuses before any worker starts."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest

from chirp import gunicorn_conf
from chirp.settings import ConfigurationError


def test_counts_default_when_unset_or_blank() -> None:
    assert gunicorn_conf.whole_number({}, "CHIRP_WEB_THREADS", 8) == 8
    assert gunicorn_conf.whole_number({"CHIRP_WEB_THREADS": " "}, "CHIRP_WEB_THREADS", 8) == 8
    assert gunicorn_conf.whole_number({"CHIRP_WEB_THREADS": " 16 "}, "CHIRP_WEB_THREADS", 8) == 16


@pytest.mark.parametrize("text", ["0", "-2", "1.5", "many", "٣"])
def test_a_count_that_is_no_whole_number_from_1_is_refused(text: str) -> None:
    with pytest.raises(ConfigurationError, match="CHIRP_WEB_WORKERS must be a whole number"):
        gunicorn_conf.whole_number({"CHIRP_WEB_WORKERS": text}, "CHIRP_WEB_WORKERS", 1)


@pytest.mark.parametrize("feed_provider", ["", "inmemory"])
def test_one_worker_serves_in_memory_feeds(feed_provider: str) -> None:
    gunicorn_conf.check_layout(1, {"FEED_PROVIDER": feed_provider} if feed_provider else {})


def test_several_workers_over_in_memory_feeds_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="3 worker processes need feeds they share"):
        gunicorn_conf.check_layout(3, {})


def test_several_workers_share_redis_feeds() -> None:
    gunicorn_conf.check_layout(4, {"FEED_PROVIDER": "redis"})


def test_chirp_settings_are_checked_before_workers_start() -> None:
    with pytest.raises(ConfigurationError, match="FEED_PROVIDER 'memcached'"):
        gunicorn_conf.check_layout(1, {"FEED_PROVIDER": "memcached"})


def test_the_start_hook_stops_gunicorn_with_the_message() -> None:
    """Gunicorn prints a RuntimeError from on_starting as "Error: ..." and exits 1."""
    arbiter = SimpleNamespace(cfg=SimpleNamespace(workers=2))
    with pytest.raises(RuntimeError, match="2 worker processes need feeds they share"):
        gunicorn_conf.on_starting(arbiter)


def test_make_run_serves_one_process_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make run` gets when nothing is set."""
    for name in ("CHIRP_BIND", "CHIRP_WEB_WORKERS", "CHIRP_WEB_THREADS"):
        monkeypatch.delenv(name, raising=False)
    importlib.reload(gunicorn_conf)
    assert gunicorn_conf.bind == ["127.0.0.1:8000"]
    assert (gunicorn_conf.workers, gunicorn_conf.threads) == (1, 8)
    assert gunicorn_conf.worker_class == "gthread"

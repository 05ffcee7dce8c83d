"""Gunicorn's configuration for Chirp: ``gunicorn --config python:chirp.gunicorn_conf``.

``make run`` serves with it as it is: one worker process of 8 threads on
127.0.0.1:8000. Three environment variables change that (gunicorn's own
``--bind``, ``--workers`` and ``--threads`` flags override them):

- ``CHIRP_BIND`` (``127.0.0.1:8000``): where to listen, as gunicorn's ``--bind``.
- ``CHIRP_WEB_WORKERS`` (1): worker processes. More than one needs feeds
  the processes share (``FEED_PROVIDER=redis`` or ``getstream``): in-memory
  feeds live in each process, so a person's next page could come from a
  process that has not seen their post yet. The server refuses to start so.
- ``CHIRP_WEB_THREADS`` (8): threads per worker, each serving one request.

Why one process by default: docs/decisions/web-server-workers.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Protocol

from chirp.settings import ConfigurationError, Settings

SHARED_FEEDS = ("redis", "getstream")


def whole_number(environ: Mapping[str, str], name: str, default: int) -> int:
    """A count of at least 1 from ``environ[name]``, or ``default`` when unset."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ConfigurationError(f"{name} must be a whole number, at least 1; it is {text!r}")
    return int(text)


def check_layout(workers: int, environ: Mapping[str, str]) -> None:
    """Refuse several worker processes over in-memory feeds (see the module's
    docstring); also checks Chirp's own settings before any worker starts."""
    feed_provider = Settings.from_env(environ).feed_provider
    if workers > 1 and feed_provider not in SHARED_FEEDS:
        raise ConfigurationError(
            f"{workers} worker processes need feeds they share (FEED_PROVIDER=redis or"
            f" getstream); with FEED_PROVIDER={feed_provider} each process keeps its own"
            " feeds in memory, and a person's next page could come from one that has not"
            " seen their post yet. Serve with one worker and more threads"
            " (CHIRP_WEB_THREADS) instead."
        )


class _Config(Protocol):
    workers: int


class _Arbiter(Protocol):
    cfg: _Config


def on_starting(server: _Arbiter) -> None:
    """Gunicorn's hook before the master starts, with every flag applied:
    a RuntimeError stops it with the message (and exit status 1)."""
    try:
        check_layout(server.cfg.workers, os.environ)
    except ConfigurationError as error:
        raise RuntimeError(str(error)) from None


def worker_exit(server: object, worker: object) -> None:
    """Stop the worker's Chirp (its log followers, its stores) as it exits."""
    from web.runtime import use_chirp  # the worker has loaded Django by now

    chirp = use_chirp(None)
    if chirp is not None:
        chirp.close()


try:
    bind = [os.environ.get("CHIRP_BIND", "").strip() or "127.0.0.1:8000"]
    workers = whole_number(os.environ, "CHIRP_WEB_WORKERS", 1)
    threads = whole_number(os.environ, "CHIRP_WEB_THREADS", 8)
except ConfigurationError as error:
    sys.exit(f"Error: {error}")

wsgi_app = "web.wsgi:application"
worker_class = "gthread"
# Connections waiting to be accepted. Django's development server keeps 10,
# and the kernel turns away the rest of a burst; gunicorn's default is 2048
# (capped by the kernel's net.core.somaxconn).
backlog = 2048
# No control socket (gunicornc): it would sit at one path per user, shared
# by every server that user starts.
control_socket_disable = True

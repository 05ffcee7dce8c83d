"""Chirp's settings, read from the environment in one place (``Settings.from_env``).

- ``CHIRP_DATA_DIR`` (default ``./data``): where the embedded stores live.
- ``DATABASE_URL``: unset for a SQLite event store in the data directory,
  ``postgresql://user:password@host:port/dbname`` for PostgreSQL, ``memory:``
  for a throw-away in-memory store (tests, benchmarks).
- ``FEED_PROVIDER`` (default ``inmemory``): where feeds live. The in-memory
  provider is rebuilt from the event log when the process starts.
- ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), ``CHIRP_REDIS_NAMESPACE``
  (``chirp``), ``CHIRP_TIMELINE_CAP`` (800): the Redis provider. A replica set
  watched by Redis Sentinel is named
  ``redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/<db>]``
  (the sentinels, and the name they monitor the primary as; the credentials
  are the primary's): clients then follow the primary through a failover.
- ``REDIS_CLUSTER`` (default false): ``true`` when ``REDIS_URL`` names a node of
  a Redis Cluster; the feeds and the projector's position then go through
  redis-py's cluster client.
- ``REDIS_BROKER_URL`` (default ``REDIS_URL``): the Redis server of the
  Dramatiq broker and the workers' lock. Dramatiq's RedisBroker does not
  support Redis Cluster, so with ``REDIS_CLUSTER=true`` and feed workers it
  must name a single server.
- ``STREAM_API_KEY``, ``STREAM_API_SECRET``, ``STREAM_LOCATION``,
  ``STREAM_TIMEOUT`` (seconds), ``STREAM_BASE_URL`` and ``STREAM_FEED_GROUPS``
  (``user=..,timeline=..,mentions=..,hashtag=..,notifications=..``): GetStream.
- ``CHIRP_POSTGRES_SCHEMA`` (default ``public``): the schema of Chirp's tables.
- ``CHIRP_FOLLOW_COPY_LIMIT`` (default 100): posts copied into a timeline on follow.
- ``CHIRP_PROJECTION`` (default ``inprocess``): ``inprocess`` projects feeds in
  the web process; ``dramatiq`` leaves them to ``chirp worker`` processes
  (Dramatiq on the Redis broker at ``REDIS_BROKER_URL``), commands only enqueue.
- ``CHIRP_FANOUT_CHUNK`` (default 1000): followers per fan-out chunk message.
- ``CHIRP_CELEBRITY_THRESHOLD`` (default 10000): an account with more
  followers is fanned out at read time (in-memory and Redis providers;
  GetStream fans out server-side).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from application.fanout import DEFAULT_FAN_OUT_CHUNK
from application.feeds import (
    DEFAULT_CELEBRITY_THRESHOLD,
    DEFAULT_COPY_LIMIT,
    MAX_ADD_TO_MANY,
    MAX_COPY_LIMIT,
)

MEMORY = "memory:"
FEED_PROVIDERS = ("inmemory", "redis", "getstream")
PROJECTIONS = ("inprocess", "dramatiq")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_TIMELINE_CAP = 800
# How long a write to a SQLite store waits for another writer (a thread or a
# process) to finish before giving up with "database is locked": every
# embedded store (events, catalog, positions, Django's accounts) waits alike.
SQLITE_BUSY_TIMEOUT_SECONDS = 20


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class SentinelParams:
    """A ``redis+sentinel://`` URL: the sentinels of a replica set, the name
    they monitor its primary as, and how to talk to the primary."""

    sentinels: list[tuple[str, int]]
    master: str
    db: int
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SentinelParams:
        usage = f"{url!r} must look like redis+sentinel://host:26379[,host:26379...]/mymaster[/0]"
        scheme, separator, rest = url.partition("://")
        if scheme != SENTINEL_SCHEME or not separator:
            raise ConfigurationError(usage)
        netloc, _, path = rest.partition("/")
        credentials, _, hosts = netloc.rpartition("@")
        username, _, password = credentials.partition(":")
        names = [part for part in path.split("/") if part]
        if not hosts or not 1 <= len(names) <= 2:
            raise ConfigurationError(usage)
        sentinels = []
        for host_port in hosts.split(","):
            host, _, port = host_port.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigurationError(f"{usage}: {host_port!r} is not host:port")
            sentinels.append((host.strip("[]"), int(port)))
        if len(names) == 2 and not names[1].isdigit():
            raise ConfigurationError(f"{usage}: database {names[1]!r} is not a number")
        return cls(
            sentinels=sentinels,
            master=unquote(names[0]),
            db=int(names[1]) if len(names) == 2 else 0,
            username=unquote(username) or None,
            password=unquote(password) or None,
        )


@dataclass(frozen=True)
class PostgresParams:
    dbname: str
    host: str
    port: int
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> PostgresParams:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
            raise ConfigurationError(
                f"DATABASE_URL {url!r} must look like postgresql://user:password@host:5432/dbname"
            )
        try:
            port = parts.port or 5432
        except ValueError:
            raise ConfigurationError(f"DATABASE_URL {url!r} has an invalid port") from None
        return cls(
            dbname=unquote(parts.path.strip("/")),
            host=parts.hostname or "127.0.0.1",
            port=port,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
        )


N = TypeVar("N", int, float)


def _number(environ: Mapping[str, str], name: str, default: N, kind: type[N]) -> N:
    text = environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        return kind(text)
    except ValueError:
        raise ConfigurationError(f"{name} {text!r} is not a number") from None


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    text = environ.get(name, "").strip().lower()
    if not text:
        return default
    if text in _TRUE + _FALSE:
        return text in _TRUE
    raise ConfigurationError(f"{name} {environ[name]!r} must be true or false")


def _mapping(environ: Mapping[str, str], name: str) -> dict[str, str]:
    """``a=b,c=d`` as a dict."""
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in environ.get(name, "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigurationError(f"{name} must look like user=user,timeline=timeline")
        result[key.strip()] = value.strip()
    return result


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""
    postgres_schema: str = ""
    feed_provider: str = "inmemory"
    follow_copy_limit: int = DEFAULT_COPY_LIMIT
    projection: str = "inprocess"
    fan_out_chunk: int = DEFAULT_FAN_OUT_CHUNK
    celebrity_threshold: int = DEFAULT_CELEBRITY_THRESHOLD
    redis_url: str = DEFAULT_REDIS_URL
    redis_cluster: bool = False
    redis_broker_url: str = ""  # empty: REDIS_URL
    redis_namespace: str = "chirp"
    timeline_cap: int = DEFAULT_TIMELINE_CAP
    stream_api_key: str = ""
    stream_api_secret: str = ""
    stream_location: str = ""
    stream_timeout: float = 6.0
    stream_base_url: str = ""
    stream_feed_groups: Mapping[str, str] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.feed_provider not in FEED_PROVIDERS:
            raise ConfigurationError(
                f"FEED_PROVIDER {self.feed_provider!r} is not one of {', '.join(FEED_PROVIDERS)}"
            )
        if not 0 <= self.follow_copy_limit <= MAX_COPY_LIMIT:
            raise ConfigurationError(
                f"CHIRP_FOLLOW_COPY_LIMIT must be between 0 and {MAX_COPY_LIMIT}"
            )
        if self.projection not in PROJECTIONS:
            raise ConfigurationError(
                f"CHIRP_PROJECTION {self.projection!r} is not one of {', '.join(PROJECTIONS)}"
            )
        if not 1 <= self.fan_out_chunk <= MAX_ADD_TO_MANY:
            raise ConfigurationError(f"CHIRP_FANOUT_CHUNK must be between 1 and {MAX_ADD_TO_MANY}")
        if self.celebrity_threshold < 0:
            raise ConfigurationError("CHIRP_CELEBRITY_THRESHOLD must not be negative")
        if self.projection == "dramatiq" and self.feed_provider == "inmemory":
            raise ConfigurationError(
                "CHIRP_PROJECTION=dramatiq needs feeds the workers share: FEED_PROVIDER=redis"
                " or getstream"
            )
        if self.database_url and self.database_url != MEMORY:
            PostgresParams.from_url(self.database_url)
        if self.timeline_cap < 1:
            raise ConfigurationError("CHIRP_TIMELINE_CAP must be at least 1")
        for url in (self.redis_url, self.redis_broker_url):
            if url.startswith(f"{SENTINEL_SCHEME}:"):
                SentinelParams.from_url(url)
        if self.redis_cluster:
            self._check_cluster_url()
            if self.projection == "dramatiq" and not self.redis_broker_url:
                raise ConfigurationError(
                    "CHIRP_PROJECTION=dramatiq with REDIS_CLUSTER=true needs REDIS_BROKER_URL:"
                    " a single Redis server for the Dramatiq broker, which does not support"
                    " Redis Cluster"
                )
        if self.feed_provider == "getstream" and not (
            self.stream_api_key and self.stream_api_secret
        ):
            raise ConfigurationError(
                "FEED_PROVIDER=getstream needs STREAM_API_KEY and STREAM_API_SECRET"
            )

    def _check_cluster_url(self) -> None:
        """A cluster client takes redis:// or rediss:// URLs of database 0 only."""
        parts = urlsplit(self.redis_url)
        if parts.scheme not in ("redis", "rediss"):
            raise ConfigurationError(
                f"REDIS_URL {self.redis_url!r} must be a redis:// or rediss:// URL of a"
                " cluster node with REDIS_CLUSTER=true"
            )
        if parts.path.strip("/") not in ("", "0"):
            raise ConfigurationError(
                f"REDIS_URL {self.redis_url!r} names database {parts.path.strip('/')}:"
                " a Redis Cluster has database 0 only (REDIS_CLUSTER=true)"
            )

    @property
    def broker_url(self) -> str:
        """The Redis server of the Dramatiq broker and the workers' lock."""
        return self.redis_broker_url or self.redis_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            data_dir=Path(environ.get("CHIRP_DATA_DIR", "data")),
            database_url=environ.get("DATABASE_URL", ""),
            postgres_schema=environ.get("CHIRP_POSTGRES_SCHEMA", ""),
            feed_provider=environ.get("FEED_PROVIDER", "inmemory"),
            follow_copy_limit=_number(environ, "CHIRP_FOLLOW_COPY_LIMIT", DEFAULT_COPY_LIMIT, int),
            projection=environ.get("CHIRP_PROJECTION", "inprocess"),
            fan_out_chunk=_number(environ, "CHIRP_FANOUT_CHUNK", DEFAULT_FAN_OUT_CHUNK, int),
            celebrity_threshold=_number(
                environ, "CHIRP_CELEBRITY_THRESHOLD", DEFAULT_CELEBRITY_THRESHOLD, int
            ),
            redis_url=environ.get("REDIS_URL", DEFAULT_REDIS_URL),
            redis_cluster=_flag(environ, "REDIS_CLUSTER", False),
            redis_broker_url=environ.get("REDIS_BROKER_URL", "").strip(),
            redis_namespace=environ.get("CHIRP_REDIS_NAMESPACE", "chirp"),
            timeline_cap=_number(environ, "CHIRP_TIMELINE_CAP", DEFAULT_TIMELINE_CAP, int),
            stream_api_key=environ.get("STREAM_API_KEY", ""),
            stream_api_secret=environ.get("STREAM_API_SECRET", ""),
            stream_location=environ.get("STREAM_LOCATION", ""),
            stream_timeout=_number(environ, "STREAM_TIMEOUT", 6.0, float),
            stream_base_url=environ.get("STREAM_BASE_URL", ""),
            stream_feed_groups=_mapping(environ, "STREAM_FEED_GROUPS"),
        )

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url) and self.database_url != MEMORY

    @property
    def in_memory(self) -> bool:
        return self.database_url == MEMORY

"""The one place where Chirp is wired: settings from the environment, adapters chosen.

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
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlsplit

from eventsourcing.persistence import TrackingRecorder
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.inmemory.feeds import InMemoryFeedProvider
from application.catalog import Catalog
from application.commands import ChirpApplication
from application.fanout import DEFAULT_FAN_OUT_CHUNK, FanOut, InProcessFanOut
from application.feeds import (
    DEFAULT_CELEBRITY_THRESHOLD,
    DEFAULT_COPY_LIMIT,
    MAX_ADD_TO_MANY,
    MAX_COPY_LIMIT,
    FeedProvider,
    FeedUnavailableError,
)
from application.log_follower import catch_up_each
from application.pages import PageReader
from application.projectors import FeedProjector
from application.service import Chirp
from chirp.table_lock import postgres_tables_lock, sqlite_tables_lock

if TYPE_CHECKING:
    import redis
    from eventsourcing.sqlite import SQLiteDatastore
    from redis.cluster import RedisCluster

    from chirp.workers import FeedWorkers

MEMORY = "memory:"
FEED_PROVIDERS = ("inmemory", "redis", "getstream")
PROJECTIONS = ("inprocess", "dramatiq")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_TIMEOUT_SECONDS = 2.0  # a sentinel that does not answer in time is skipped
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


def event_store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment of the event store these settings name."""
    if settings.in_memory:
        env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    elif settings.uses_postgres:
        params = PostgresParams.from_url(settings.database_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": params.dbname,
            "POSTGRES_HOST": params.host,
            "POSTGRES_PORT": str(params.port),
            "POSTGRES_USER": params.user,
            "POSTGRES_PASSWORD": params.password,
            "POSTGRES_SCHEMA": settings.postgres_schema,
        }
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.data_dir / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_BUSY_TIMEOUT_SECONDS),
        }
    return {**env, **settings.extra_env}


@contextmanager
def creating_tables(settings: Settings) -> Iterator[None]:
    """Hold while creating tables in the stores ``settings`` name: processes
    starting together take turns (see ``chirp.table_lock``)."""
    if settings.uses_postgres:
        params = PostgresParams.from_url(settings.database_url)
        with postgres_tables_lock(params, settings.postgres_schema):
            yield
    elif settings.in_memory:
        yield
    else:
        with sqlite_tables_lock(settings.data_dir):
            yield


def build_commands(settings: Settings) -> ChirpApplication:
    """The command side on the event store ``settings`` name; its recorder
    creates the event tables it needs, taking its turn."""
    with creating_tables(settings):
        return ChirpApplication(env=event_store_env(settings))


def build_catalog(settings: Settings, feeds: FeedProvider) -> Catalog:
    """The catalog; with Redis feeds, behind a cache in the same Redis (on
    the feeds' own client), so a warm page of a feed is read from Redis alone."""
    from adapters.redis.catalog_cache import RedisCatalogCache
    from adapters.redis.feeds import RedisFeedProvider

    catalog = _build_catalog_store(settings)
    if isinstance(feeds, RedisFeedProvider):
        return RedisCatalogCache(catalog, feeds.client, feeds.namespace)
    return catalog


def _build_catalog_store(settings: Settings) -> Catalog:
    if settings.in_memory:
        return InMemoryCatalog()
    if settings.uses_postgres:
        from eventsourcing.postgres import PostgresDatastore

        from adapters.postgres.catalog import PostgresCatalog

        params = PostgresParams.from_url(settings.database_url)
        postgres_catalog = PostgresCatalog(
            PostgresDatastore(
                params.dbname,
                params.host,
                params.port,
                params.user,
                params.password,
                schema=settings.postgres_schema,
            )
        )
        with creating_tables(settings):
            postgres_catalog.create_table()
        return postgres_catalog
    from adapters.sqlite.catalog import SQLiteCatalog

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sqlite_catalog = SQLiteCatalog(_sqlite_datastore(settings.data_dir / "catalog.sqlite"))
    with creating_tables(settings):
        sqlite_catalog.create_table()
    return sqlite_catalog


def _sqlite_datastore(path: Path) -> SQLiteDatastore:
    """A SQLite store of Chirp's own (catalog, positions): its writers wait
    for each other as long as the event store's do."""
    from eventsourcing.sqlite import SQLiteDatastore

    return SQLiteDatastore(
        str(path),
        lock_timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
        pool_timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
    )


def build_feed_provider(settings: Settings) -> tuple[FeedProvider, TrackingRecorder]:
    """The feed provider and where its projector records its position.

    The position lives with the feeds when it can: an in-memory provider
    forgets both on exit; Redis keeps both (and loses both together). GetStream
    cannot hold it, so it goes beside the event store."""
    if settings.feed_provider == "redis":
        from adapters.redis.feeds import RedisFeedProvider
        from adapters.redis.tracking import RedisTrackingRecorder

        client = redis_client(settings)
        provider = RedisFeedProvider(
            client,
            settings.redis_namespace,
            timeline_cap=settings.timeline_cap,
            celebrity_threshold=settings.celebrity_threshold,
        )
        return provider, RedisTrackingRecorder(client, settings.redis_namespace)
    if settings.feed_provider == "getstream":
        from adapters.getstream.feeds import GetStreamFeedProvider

        try:
            stream_provider = GetStreamFeedProvider.from_settings(
                settings.stream_api_key,
                settings.stream_api_secret,
                location=settings.stream_location or None,
                timeout=settings.stream_timeout,
                base_url=settings.stream_base_url or None,
                feed_groups=settings.stream_feed_groups or None,
            )
        except ValueError as error:  # a bad feed group name, an IP base URL
            raise ConfigurationError(str(error)) from None
        return stream_provider, durable_tracking(settings, "feeds")
    return InMemoryFeedProvider(settings.celebrity_threshold), POPOTrackingRecorder()


def redis_client(settings: Settings) -> redis.Redis | RedisCluster:
    """The client of the feeds' Redis: a cluster client with
    ``REDIS_CLUSTER=true``. A URL that names the other kind of server is a
    ConfigurationError; a server out of reach, FeedUnavailableError (as the
    feeds would say)."""
    import redis
    from redis.exceptions import RedisClusterException

    from adapters.redis.cluster import cluster_client
    from adapters.redis.feeds import cluster_unreachable

    url = settings.redis_url
    if settings.redis_cluster:
        try:
            return cluster_client(url)
        except RedisClusterException as error:
            if cluster_unreachable(error):
                raise FeedUnavailableError(f"Redis Cluster is unavailable: {error}") from error
            raise ConfigurationError(
                f"REDIS_CLUSTER=true, but REDIS_URL {url!r} is not a Redis Cluster node"
                f" ({error}); set REDIS_CLUSTER=false for a single server"
            ) from None
    client = redis_server(url)
    try:
        cluster_enabled = client.info("cluster").get("cluster_enabled") == 1
    except redis.RedisError:  # out of reach: the feeds will say so when used
        cluster_enabled = False
    if cluster_enabled:
        client.close()
        raise ConfigurationError(
            f"REDIS_URL {url!r} is a Redis Cluster node: set REDIS_CLUSTER=true"
        )
    return client


def redis_server(url: str) -> redis.Redis:
    """A client of the single Redis server at ``url``, or of the primary of
    the replica set whose sentinels a ``redis+sentinel://`` URL names: that
    client asks the sentinels where the primary is, and asks again when a
    connection fails, so it follows a failover."""
    import redis
    from redis.sentinel import Sentinel

    if not url.startswith(f"{SENTINEL_SCHEME}:"):
        return redis.Redis.from_url(url)
    params = SentinelParams.from_url(url)
    sentinel = Sentinel(params.sentinels, socket_timeout=SENTINEL_TIMEOUT_SECONDS)  # type: ignore[no-untyped-call]
    primary: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        params.master, db=params.db, username=params.username, password=params.password
    )
    return primary


def durable_tracking(settings: Settings, projection: str) -> TrackingRecorder:
    """A position recorder beside the event store, one per projection."""
    if settings.in_memory:
        return POPOTrackingRecorder()
    if settings.uses_postgres:
        from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder

        params = PostgresParams.from_url(settings.database_url)
        datastore = PostgresDatastore(
            params.dbname,
            params.host,
            params.port,
            params.user,
            params.password,
            schema=settings.postgres_schema,
        )
        postgres_recorder = PostgresTrackingRecorder(
            datastore, tracking_table_name=f"chirp_{projection}_tracking"
        )
        with creating_tables(settings):
            postgres_recorder.create_table()
        return postgres_recorder
    from eventsourcing.sqlite import SQLiteTrackingRecorder

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # eventsourcing's SQLite tracking table has a fixed name: a file of its own.
    datastore_file = settings.data_dir / f"{projection}-tracking.sqlite"
    sqlite_recorder = SQLiteTrackingRecorder(_sqlite_datastore(datastore_file))
    with creating_tables(settings):
        sqlite_recorder.create_table()
    return sqlite_recorder


def build_feed_projector(
    settings: Settings, fan_out: FanOut | None = None
) -> tuple[FeedProjector, FeedProvider]:
    """The feed projector, fanning out in chunks through ``fan_out`` (by
    default in this process)."""
    provider, feed_tracking = build_feed_provider(settings)
    projector = FeedProjector(
        provider,
        feed_tracking,
        settings.follow_copy_limit,
        fan_out=fan_out or InProcessFanOut(provider),
        fan_out_chunk=settings.fan_out_chunk,
    )
    return projector, provider


def build_chirp(settings: Settings | None = None, project_synchronously: bool = True) -> Chirp:
    """Chirp for the web and the CLI. With ``CHIRP_PROJECTION=dramatiq`` it
    projects no feeds itself: each command asks the workers to catch up."""
    settings = settings or Settings.from_env()
    commands = build_commands(settings)
    request_feed_projection: Callable[[], object] | None = None
    if settings.projection == "dramatiq":
        from chirp.workers import FeedWorkers, configure_broker

        workers = FeedWorkers(
            configure_broker(
                redis_server(settings.broker_url), f"{settings.redis_namespace}-dramatiq"
            )
        )
        projector, _ = build_feed_projector(settings, workers.fan_out)
        request_feed_projection = workers.request_projection
    else:
        projector, _ = build_feed_projector(settings)
    catalog = build_catalog(settings, projector.provider)
    return Chirp(
        commands,
        catalog,
        projector,
        project_synchronously,
        request_feed_projection=request_feed_projection,
        page_reader=build_page_reader(projector.provider, catalog),
    )


def build_page_reader(provider: FeedProvider, catalog: Catalog) -> PageReader | None:
    """Pages in one round trip where the feeds and the catalog's cache share
    a Redis server; None (the provider, then the catalog) elsewhere."""
    from adapters.redis.catalog_cache import RedisCatalogCache
    from adapters.redis.feeds import RedisFeedProvider
    from adapters.redis.pages import RedisPageReader

    if isinstance(provider, RedisFeedProvider) and isinstance(catalog, RedisCatalogCache):
        return RedisPageReader(provider, catalog)
    return None


def build_workers(settings: Settings) -> tuple[FeedWorkers, Chirp]:
    """A Dramatiq worker process: the feed actors on the Redis broker at
    ``REDIS_BROKER_URL`` (default ``REDIS_URL``), bound to this process's feed
    projector. Its catch-ups hold a lock on the broker's Redis, so one runs
    at a time across every worker."""
    from chirp.workers import FeedWorkers, RenewedLock, configure_broker

    client = redis_server(settings.broker_url)  # the broker's and the lock's
    workers = FeedWorkers(configure_broker(client, f"{settings.redis_namespace}-dramatiq"))
    commands = build_commands(settings)
    projector, provider = build_feed_projector(settings, workers.fan_out)
    chirp = Chirp(
        commands, build_catalog(settings, provider), projector, project_synchronously=False
    )
    lock_name = f"{settings.redis_namespace}:project-feeds-lock"
    # A worker thread takes the lock, then catches up: the catch-up checks
    # that thread's lease after each batch, and stops if it was lost.
    leases = threading.local()

    def lock() -> RenewedLock:
        lease = leases.current = RenewedLock(client, lock_name)
        return lease

    def catch_up() -> None:
        lease: RenewedLock = leases.current
        catch_up_each(
            [chirp.catalog_follower, chirp.feed_follower], on_batch=lambda _: lease.check()
        )

    workers.bind(provider, catch_up, lock)
    return workers, chirp

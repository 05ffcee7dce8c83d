"""The one place where Chirp is wired: adapters chosen and assembled from
``Settings`` (``chirp/settings.py``, which lists every variable)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from eventsourcing.persistence import TrackingRecorder
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.inmemory.feeds import InMemoryFeedProvider
from application.catalog import Catalog
from application.commands import ChirpApplication
from application.fanout import FanOut, InProcessFanOut
from application.feeds import FeedProvider, FeedUnavailableError
from application.leases import HeldElsewhere, Lease, OwnLease
from application.log_follower import catch_up_each
from application.pages import PageReader
from application.projectors import FeedProjector
from application.service import Chirp
from chirp.settings import (
    SENTINEL_SCHEME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    ConfigurationError,
    PostgresParams,
    SentinelParams,
    Settings,
)
from chirp.table_lock import postgres_tables_lock, sqlite_tables_lock

if TYPE_CHECKING:
    import redis
    from eventsourcing.sqlite import SQLiteDatastore
    from redis.cluster import RedisCluster

    from chirp.workers import FeedWorkers

SENTINEL_TIMEOUT_SECONDS = 2.0  # a sentinel that does not answer in time is skipped


# Aggregates each process keeps between commands (eventsourcing's cache):
# a command reads only the events stored since (``AGGREGATE_CACHE_FASTFORWARD``,
# on by default), so a copy changed by another process is brought up to date.
AGGREGATE_CACHE_SIZE = 1000
# How long the event store waits for a PostgreSQL connection (a free one
# from its pool, or a new one) before it gives up and the page says to try
# again. eventsourcing tries a read ten times, so a read gives up after
# about 20 s when the database is out of reach; an insert after one wait.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 2
ONE_TRIP_RECORDER = "adapters.postgres.event_store:OneTripApplicationRecorder"


def event_store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment of the event store these settings name."""
    cache = {"AGGREGATE_CACHE_MAXSIZE": str(AGGREGATE_CACHE_SIZE)}
    if settings.in_memory:
        env = {"PERSISTENCE_MODULE": "eventsourcing.popo", **cache}
    elif settings.uses_postgres:
        params = PostgresParams.from_url(settings.database_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            # One round trip per insert, under eventsourcing's table lock.
            "APPLICATION_RECORDER_TOPIC": ONE_TRIP_RECORDER,
            "POSTGRES_DBNAME": params.dbname,
            "POSTGRES_HOST": params.host,
            "POSTGRES_PORT": str(params.port),
            "POSTGRES_USER": params.user,
            "POSTGRES_PASSWORD": params.password,
            "POSTGRES_SCHEMA": settings.postgres_schema,
            "POSTGRES_CONNECT_TIMEOUT": str(POSTGRES_CONNECT_TIMEOUT_SECONDS),
            **cache,
        }
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.data_dir / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_BUSY_TIMEOUT_SECONDS),
            **cache,
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


def build_chirp(settings: Settings | None = None, read_own_writes: bool = True) -> Chirp:
    """Chirp for the web and the CLI. With ``CHIRP_PROJECTION=dramatiq`` it
    projects no feeds itself: each command asks the workers to catch up.
    Each projection is run by the process holding its lease (``build_lease``)."""
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
    feed_lease: Lease
    if request_feed_projection is not None:
        feed_lease = HeldElsewhere()  # the workers project the feeds
    elif isinstance(projector.provider, InMemoryFeedProvider):
        feed_lease = OwnLease()  # this process's own feeds
    else:
        feed_lease = build_lease(settings, f"feeds {settings.feed_provider} {feeds_name(settings)}")
    return Chirp(
        commands,
        catalog,
        projector,
        read_own_writes,
        request_feed_projection=request_feed_projection,
        page_reader=build_page_reader(projector.provider, catalog),
        catalog_lease=build_lease(settings, "catalog"),
        feed_lease=feed_lease,
    )


def feeds_name(settings: Settings) -> str:
    """What names the feeds these settings project into, for their lease."""
    if settings.feed_provider == "redis":
        return f"{settings.redis_url} {settings.redis_namespace}"
    return settings.stream_api_key


def build_lease(settings: Settings, projection: str) -> Lease:
    """The lease of ``projection`` among the processes sharing these
    settings' event store: an advisory lock in PostgreSQL, a lock on a
    SQLite file in the data directory; a throw-away store is this process's."""
    if settings.in_memory:
        return OwnLease()
    if settings.uses_postgres:
        from adapters.postgres.lease import PostgresLease

        params = PostgresParams.from_url(settings.database_url)
        schema = settings.postgres_schema or "public"
        return PostgresLease(
            f"{projection} in {schema}",
            dbname=params.dbname,
            host=params.host,
            port=params.port,
            user=params.user,
            password=params.password,
        )
    from adapters.sqlite.lease import SQLiteLease

    return SQLiteLease(settings.data_dir / f"{projection.split()[0]}.lease")


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
    chirp = Chirp(commands, build_catalog(settings, provider), projector, read_own_writes=False)
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

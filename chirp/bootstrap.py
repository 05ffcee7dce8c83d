"""The one place where Chirp is wired: settings from the environment, adapters chosen.

- ``CHIRP_DATA_DIR`` (default ``./data``): where the embedded stores live.
- ``DATABASE_URL``: unset for a SQLite event store in the data directory,
  ``postgresql://user:password@host:port/dbname`` for PostgreSQL, ``memory:``
  for a throw-away in-memory store (tests, benchmarks).
- ``FEED_PROVIDER`` (default ``inmemory``): where feeds live. The in-memory
  provider is rebuilt from the event log when the process starts.
- ``CHIRP_POSTGRES_SCHEMA`` (default ``public``): the schema of Chirp's tables.
- ``CHIRP_FOLLOW_COPY_LIMIT`` (default 100): posts copied into a timeline on follow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from eventsourcing.persistence import TrackingRecorder
from eventsourcing.popo import POPOTrackingRecorder

from adapters.inmemory.catalog import InMemoryCatalog
from adapters.inmemory.feeds import InMemoryFeedProvider
from application.catalog import Catalog
from application.commands import ChirpApplication
from application.feeds import DEFAULT_COPY_LIMIT, MAX_COPY_LIMIT, FeedProvider
from application.projectors import FeedProjector
from application.service import Chirp

MEMORY = "memory:"
FEED_PROVIDERS = ("inmemory",)


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


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


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""
    postgres_schema: str = ""
    feed_provider: str = "inmemory"
    follow_copy_limit: int = DEFAULT_COPY_LIMIT
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
        if self.database_url and self.database_url != MEMORY:
            PostgresParams.from_url(self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        copy_limit_text = environ.get("CHIRP_FOLLOW_COPY_LIMIT", str(DEFAULT_COPY_LIMIT))
        try:
            copy_limit = int(copy_limit_text)
        except ValueError:
            raise ConfigurationError(
                f"CHIRP_FOLLOW_COPY_LIMIT {copy_limit_text!r} is not a whole number"
            ) from None
        return cls(
            data_dir=Path(environ.get("CHIRP_DATA_DIR", "data")),
            database_url=environ.get("DATABASE_URL", ""),
            postgres_schema=environ.get("CHIRP_POSTGRES_SCHEMA", ""),
            feed_provider=environ.get("FEED_PROVIDER", "inmemory"),
            follow_copy_limit=copy_limit,
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
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    return {**env, **settings.extra_env}


def build_catalog(settings: Settings) -> Catalog:
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
        postgres_catalog.create_table()
        return postgres_catalog
    from eventsourcing.sqlite import SQLiteDatastore

    from adapters.sqlite.catalog import SQLiteCatalog

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sqlite_catalog = SQLiteCatalog(SQLiteDatastore(str(settings.data_dir / "catalog.sqlite")))
    sqlite_catalog.create_table()
    return sqlite_catalog


def build_feed_provider(settings: Settings) -> tuple[FeedProvider, TrackingRecorder]:
    """The feed provider and where its projector records its position. An
    in-memory provider forgets everything on exit, so its position does too."""
    return InMemoryFeedProvider(), POPOTrackingRecorder()


def build_chirp(settings: Settings | None = None, project_synchronously: bool = True) -> Chirp:
    settings = settings or Settings.from_env()
    commands = ChirpApplication(env=event_store_env(settings))
    provider, feed_tracking = build_feed_provider(settings)
    projector = FeedProjector(provider, feed_tracking, settings.follow_copy_limit)
    return Chirp(commands, build_catalog(settings), projector, project_synchronously)

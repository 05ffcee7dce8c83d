"""``manage.py migrate``, one process at a time per database.

Django's ``migrate`` is not safe to run concurrently: processes started
together (containers that each migrate before serving) all find the tables
missing, and all but one then fail creating them. This is Django's command
behind the same lock as Chirp's own table creation (``chirp.table_lock``):
the first one migrates, the others then find nothing left to do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

from chirp.settings import PostgresParams
from chirp.table_lock import postgres_tables_lock, sqlite_tables_lock

DJANGO_SCHEMA = "public"  # Django's tables: the connection's default search path


class Command(DjangoMigrate):
    def handle(self, *args: Any, **options: Any) -> None:
        with one_at_a_time(connections[options["database"]].settings_dict):
            super().handle(*args, **options)


@contextmanager
def one_at_a_time(database: Mapping[str, Any]) -> Iterator[None]:
    """Hold the table lock of the database Django's ``database`` settings name."""
    engine = database["ENGINE"]
    name = str(database["NAME"])
    if engine == "django.db.backends.postgresql":
        params = PostgresParams(
            dbname=name,
            host=database.get("HOST") or "127.0.0.1",
            port=int(database.get("PORT") or 5432),
            user=database.get("USER") or "postgres",
            password=database.get("PASSWORD") or "",
        )
        with postgres_tables_lock(params, DJANGO_SCHEMA):
            yield
    elif engine == "django.db.backends.sqlite3" and not _in_memory(name):
        with sqlite_tables_lock(Path(name).parent):
            yield
    else:
        yield


def _in_memory(name: str) -> bool:
    return name in ("", ":memory:") or "mode=memory" in name

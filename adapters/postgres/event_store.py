"""The event store's PostgreSQL recorder, storing a command's events in one round trip.

eventsourcing's ``PostgresApplicationRecorder`` inserts in a pipelined
transaction (lock the table, insert, sync, then commit): two round trips,
with the table lock held across the one in between. This recorder calls a
database function instead, as one statement in autocommit: it takes the same
``LOCK TABLE ... IN EXCLUSIVE MODE`` before the insert draws its notification
ids, and the statement's commit releases it. So ids still become visible in
the order they were drawn (a follower of the log never passes a gap that
fills later), the lock is held only while the server works, and a command
costs one round trip. (eventsourcing's own function,
``POSTGRES_ENABLE_DB_FUNCTIONS``, inserts without the lock.)

This is the one module that reaches inside eventsourcing: it builds on the
recorder's table names, its schema and its list of creation statements.
tests/integration/test_postgres_event_store.py fails when an upgrade changes
them. Chosen with ``APPLICATION_RECORDER_TOPIC`` (``chirp.bootstrap``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg_pool
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier

# A connection that broke (the server restarted, a pooled connection went
# stale) is replaced and the insert tried again, as eventsourcing does; a pool
# that found no connection in its whole timeout is not asked again.
INSERT_ATTEMPTS = 10
RETRY_WAIT_SECONDS = 0.2


class OneTripApplicationRecorder(PostgresApplicationRecorder):
    """An application recorder whose insert is one statement: a function that
    locks the events table, inserts and returns the notification ids."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        # Two functions: one for any number of events, and one for a single
        # event (every Chirp command), whose scalar parameters psycopg sends
        # for less than its arrays cost.
        self.insert_function_name = f"chirp_insert_{events_table_name}"
        self.insert_one_function_name = f"chirp_insert_one_{events_table_name}"
        self.check_identifier_length(self.insert_one_function_name)
        schema = Identifier(self.datastore.schema)
        id_type = SQL(self.datastore.originator_id_type)
        names = {
            "schema": schema,
            "id_type": id_type,
            "table": Identifier(self.events_table_name),
            "channel": Identifier(self.channel_name),
            "lock_timeout": SQL(str(int(self.datastore.lock_timeout))),
            "many": Identifier(self.insert_function_name),
            "one": Identifier(self.insert_one_function_name),
        }
        lock = (
            "PERFORM set_config('lock_timeout', '{lock_timeout}s', true); "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{many}("
                "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN " + lock + "RETURN QUERY "
                "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) "
                "RETURNING notification_id; "
                "END; $BODY$"
            ).format(**names)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{one}("
                "id {id_type}, version bigint, topic text, state bytea) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN " + lock + "RETURN QUERY "
                "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                "VALUES (id, version, topic, state) RETURNING notification_id; "
                "END; $BODY$"
            ).format(**names)
        )
        self.insert_statement = SQL(
            "SELECT * FROM {schema}.{many}(%s, %s, %s, %s) AS notification_id"
        ).format(**names)
        self.insert_one_statement = SQL(
            "SELECT * FROM {schema}.{one}(%s, %s, %s, %s) AS notification_id"
        ).format(**names)
        self.select_same_statement = SQL(
            "SELECT t.originator_id, t.originator_version, t.topic, t.state, t.notification_id "
            "FROM {schema}.{table} t JOIN unnest(%s::{id_type}[], %s::bigint[]) AS k(id, version) "
            "ON t.originator_id = k.id AND t.originator_version = k.version"
        ).format(**names)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Store ``stored_events`` in one transaction, all or none; their
        notification ids, in order. A version already stored raises
        ``IntegrityError``; a database out of reach, ``OperationalError``.

        A connection that breaks is replaced and the insert tried again. The
        insert may have been committed before it broke: then the next attempt
        finds these very events stored, and returns their ids."""
        if not stored_events:
            return []
        params = (
            [event.originator_id for event in stored_events],
            [event.originator_version for event in stored_events],
            [event.topic for event in stored_events],
            [event.state for event in stored_events],
        )
        attempt = 1
        while True:
            try:
                return self._insert(params)
            except IntegrityError:
                if attempt > 1:
                    stored = self._stored_ids_if_same(params)
                    if stored is not None:
                        return stored
                raise
            except (InterfaceError, OperationalError) as error:
                if attempt >= INSERT_ATTEMPTS or _no_connection_in_time(error):
                    raise
            attempt += 1
            self.datastore.pool.check()  # drop the other broken connections at once
            time.sleep(RETRY_WAIT_SECONDS)

    def _insert(self, params: tuple[list[Any], ...]) -> list[int]:
        if len(params[0]) == 1:
            statement, values = self.insert_one_statement, tuple(column[0] for column in params)
        else:
            statement, values = self.insert_statement, params
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, values, prepare=True)
            return [row["notification_id"] for row in cursor.fetchall()]

    def _stored_ids_if_same(self, params: tuple[list[Any], ...]) -> list[int] | None:
        """The notification ids of the stored events at these events'
        (originator, version), when every one of them is stored with the same
        topic and state (each event's state holds its own timestamp): an
        earlier attempt stored them. None when any differs or is missing."""
        ids, versions, topics, states = params
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(self.select_same_statement, (ids, versions))
            found = {
                (row["originator_id"], row["originator_version"]): row for row in cursor.fetchall()
            }
        notification_ids = []
        for key in zip(ids, versions, topics, states, strict=True):
            row = found.get((key[0], key[1]))
            if row is None or (row["topic"], bytes(row["state"])) != (key[2], key[3]):
                return None
            notification_ids.append(row["notification_id"])
        return notification_ids


def _no_connection_in_time(error: PersistenceError) -> bool:
    """Whether the pool waited its whole timeout without a connection (the
    database is out of reach): asking again would only make the caller wait
    as long once more."""
    return isinstance(error.__cause__, psycopg_pool.PoolTimeout)

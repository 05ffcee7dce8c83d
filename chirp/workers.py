"""The feed projection on Dramatiq workers (Redis broker).

Two actors, declared on a given broker by :class:`FeedWorkers` (never at
import time, so importing this module binds no broker):

- ``chirp_project_feeds``: the feed projector's catch-up of the event log.
  Commands send it instead of projecting in the web process. A lock shared by
  every worker (a Redis lock in production) lets one catch-up run at a time,
  so events are applied in log order; a message that finds the lock taken
  waits for it, then finds little or nothing left to do. The lock is a
  lease (:class:`RenewedLock`): renewed while its holder lives, freed
  within one lease when the holder dies.
- ``chirp_fan_out_chunk``: copies a stored post to one chunk of its author's
  followers (``FeedProvider.copy_to_followers``). The projector sends one per
  ``CHIRP_FANOUT_CHUNK`` followers, and any worker thread or process takes
  them, so a large fan-out runs in parallel. A chunk is idempotent and checks
  the follow and the post are still there, so a retry, a duplicate delivery
  or a chunk running after a later unfollow or delete adds nothing wrong.

Both retry failures with exponential backoff (Dramatiq's ``Retries``
middleware: ``min_backoff`` doubling up to ``max_backoff``).

Run the workers with ``chirp worker`` (see ``chirp/cli.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from redis.exceptions import LockError
from redis.lock import Lock

from application.fanout import FanOut
from application.feeds import FeedId, FeedProvider

logger = logging.getLogger(__name__)

QUEUE = "chirp-feeds"
PROJECT_FEEDS = "chirp_project_feeds"
FAN_OUT_CHUNK = "chirp_fan_out_chunk"
MAX_RETRIES = 20
MIN_BACKOFF_MS = 500
MAX_BACKOFF_MS = 5 * 60 * 1000
# The catch-up lock: a dead holder stalls the feeds for at most one lease;
# a message waits this long for a live one before it fails (and is retried).
LOCK_LEASE_SECONDS = 30.0
LOCK_WAIT_SECONDS = 600.0


def configure_broker(client: redis.Redis, namespace: str = "dramatiq") -> RedisBroker:
    """The Redis broker on ``client``'s server, made the global Dramatiq
    broker. Called explicitly by the worker command and by the wiring, never
    at import."""
    broker = RedisBroker(client=client, namespace=namespace)  # type: ignore[no-untyped-call]
    dramatiq.set_broker(broker)
    return broker


class RenewedLock:
    """A Redis lock held as a lease of ``lease`` seconds, renewed every third
    of it by a thread of the holder while held: a holder that dies (its
    process killed, its machine gone) frees it within one lease, and one that
    lives keeps it however long its work takes. Entering waits up to
    ``wait`` seconds for it, then raises ``LockError``. A lease lost anyway
    (the holder stalled for a whole lease, or a Redis failover lost the key)
    is not taken back: :meth:`check`, called between steps of the work,
    raises ``LockError`` then, to stop it. Each use needs a new instance."""

    def __init__(
        self,
        client: redis.Redis,
        name: str,
        lease: float = LOCK_LEASE_SECONDS,
        wait: float = LOCK_WAIT_SECONDS,
    ) -> None:
        # thread_local=False: the renewing thread uses the holder's token.
        self._lock = Lock(client, name, timeout=lease, blocking_timeout=wait, thread_local=False)
        self.name = name
        self.lease = lease
        self.wait = wait
        self._done = threading.Event()
        self._lost = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name=f"renew {name}", daemon=True)

    def __enter__(self) -> None:
        if not self._lock.acquire():
            raise LockError(f"the lock {self.name} is still held after {self.wait:g} s")
        self._renewer.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._renewer.join()
        try:
            self._lock.release()
        except LockError:
            logger.error("the lock %s had expired before its holder was done", self.name)

    def check(self) -> None:
        """Raise ``LockError`` if the lease was lost while held."""
        if self._lost.is_set():
            raise LockError(f"lost the lock {self.name}: another worker may hold it now")

    def _renew(self) -> None:
        while not self._done.wait(self.lease / 3):
            try:
                self._lock.reacquire()
            except LockError:  # expired, or its key gone
                self._lost.set()
                logger.error("lost the lock %s: another worker may hold it now", self.name)
                return
            except redis.RedisError as error:  # out of reach: try again at the next turn
                logger.warning("could not renew the lock %s: %s", self.name, error)


class DramatiqFanOut(FanOut):
    """Sends each chunk as a ``chirp_fan_out_chunk`` message."""

    def __init__(self, actor: dramatiq.Actor[..., None]) -> None:
        self.actor = actor

    def dispatch(self, feed: FeedId, activity_id: str, followers: Sequence[FeedId]) -> None:
        self.actor.send(str(feed), activity_id, [str(follower) for follower in followers])


class FeedWorkers:
    """The feed actors on ``broker``.

    Every process that sends messages builds one; a worker process also calls
    :meth:`bind` to say what the actors work on. ``queue_name`` lets tests use
    a queue of their own.
    """

    def __init__(
        self,
        broker: dramatiq.Broker,
        *,
        queue_name: str = QUEUE,
        max_retries: int = MAX_RETRIES,
        min_backoff: int = MIN_BACKOFF_MS,
        max_backoff: int = MAX_BACKOFF_MS,
    ) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self._provider: FeedProvider | None = None
        self._catch_up: Callable[[], object] | None = None
        self._lock: Callable[[], AbstractContextManager[Any]] = nullcontext
        options: dict[str, Any] = {
            "queue_name": queue_name,
            "broker": broker,
            "max_retries": max_retries,
            "min_backoff": min_backoff,
            "max_backoff": max_backoff,
        }
        self.project_feeds_actor: dramatiq.Actor[[], None] = dramatiq.actor(
            actor_name=PROJECT_FEEDS, **options
        )(self._project_feeds)
        self.fan_out_chunk_actor: dramatiq.Actor[[str, str, list[str]], None] = dramatiq.actor(
            actor_name=FAN_OUT_CHUNK, **options
        )(self._fan_out_chunk)
        self.fan_out = DramatiqFanOut(self.fan_out_chunk_actor)

    def bind(
        self,
        provider: FeedProvider,
        catch_up: Callable[[], object],
        lock: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        """Execute the messages here: chunks against ``provider``, catch-ups
        with ``catch_up`` while holding a fresh ``lock()``."""
        self._provider = provider
        self._catch_up = catch_up
        self._lock = lock

    def request_projection(self) -> None:
        """Ask a worker to project the events written so far."""
        self.project_feeds_actor.send()

    def _project_feeds(self) -> None:
        if self._catch_up is None:
            raise RuntimeError("FeedWorkers.bind was not called in this worker")
        with self._lock():
            self._catch_up()

    def _fan_out_chunk(self, feed: str, activity_id: str, followers: list[str]) -> None:
        if self._provider is None:
            raise RuntimeError("FeedWorkers.bind was not called in this worker")
        self._provider.copy_to_followers(
            FeedId.parse(feed), activity_id, [FeedId.parse(name) for name in followers]
        )

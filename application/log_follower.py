"""Follow the event log: feed each new event to a projector, from where it left off.

Works on every eventsourcing recorder (SQLite has no ``subscribe``): it reads
notifications after the projector's tracked position, in batches. ``catch_up``
runs synchronously (after a command, in tests, in replay); ``start`` polls in a
background thread so events written by other processes are projected too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification, Tracking

from application.projectors import Projector

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500


class LogFollower:
    def __init__(
        self,
        application: Application[Any],
        projector: Projector,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.application = application
        self.projector = projector
        self.batch_size = batch_size
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def position(self) -> int:
        """The id of the last event projected (0 when none)."""
        return self.projector.tracking_recorder.max_tracking_id(self.application.name) or 0

    def catch_up(
        self, on_batch: Callable[[int], object] | None = None, stop: int | None = None
    ) -> int:
        """Project every event after ``position`` (up to ``stop``); return how
        many were projected. ``on_batch(n)`` is called after each batch."""
        processed = 0
        with self._lock:
            start = self.position
            while True:
                notifications = self.application.recorder.select_notifications(
                    start=start, limit=self.batch_size, stop=stop, inclusive_of_start=False
                )
                if not notifications:
                    return processed
                for notification in notifications:
                    if not self._project(notification, start):
                        start = self.position  # it moved: go on from where it is
                        break
                    start = notification.id
                    processed += 1
                else:
                    if on_batch is not None:
                        on_batch(len(notifications))
                    if len(notifications) < self.batch_size:
                        return processed

    def _project(self, notification: Notification, previous: int) -> bool:
        """Project one event, the one after position ``previous``; False when
        the position moved meanwhile: another process sharing it had already
        projected this event, or it was moved back before ``previous`` (a
        Redis Cluster shard lost feed writes: they are projected again)."""
        event = self.application.mapper.to_domain_event(notification)
        try:
            self.projector.process(event, Tracking(self.application.name, notification.id))
        except IntegrityError:
            position = self.position
            if previous <= position < notification.id:
                raise
            return False
        return True

    def start(self, poll_interval: float = 0.2) -> None:
        """Keep catching up in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, args=(poll_interval,), name="log-follower", daemon=True
        )
        self._thread.start()

    def _run(self, poll_interval: float) -> None:
        while not self._stopping.is_set():
            try:
                self.catch_up()
            except Exception:  # keep following; the position makes the retry safe
                logger.exception("projecting the event log failed; retrying")
            self._stopping.wait(poll_interval)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

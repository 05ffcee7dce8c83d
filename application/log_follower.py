"""Follow the event log: feed each new event to a projector, from where it left off.

Works on every eventsourcing recorder (SQLite has no ``subscribe``): it reads
notifications after the projector's tracked position, in batches. ``catch_up``
runs synchronously and raises what the projector raised (replay, workers,
tests); ``try_catch_up`` is what the background thread and readers use: it
never raises, and after a failure it waits for the next retry (backing off up
to ``max_retry`` seconds) instead of trying on every read. An event that
keeps failing is reported (logged, and in :meth:`LogFollower.status`) and
retried until it projects; the events after it wait, and nothing is skipped.
``catch_up_in_batches`` is ``catch_up`` for replays: a projector that can
(``BatchProjector``) projects each batch at once and records its position once.

Only the holder of the projection's lease (``application/leases.py``)
projects; every process can :meth:`~LogFollower.wait_for` a position (a
reader waiting for its own writes): it projects itself when the lease is
free, else it watches the position the holder records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification, Tracking

from application.leases import Lease, OwnLease
from application.projection_status import (
    STUCK_AFTER_ATTEMPTS,
    PendingEvent,
    ProjectionFailure,
    ProjectionStatus,
)
from application.projectors import BatchProjector, BatchStopped, Projector

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0
# How often a process waiting for a position another process projects looks
# at it again.
WATCH_INTERVAL_SECONDS = 0.01
OPERATIONS_DOC = "docs/operations.md, 'A stuck projection'"


class LogFollower:
    def __init__(
        self,
        application: Application[Any],
        projector: Projector,
        batch_size: int = DEFAULT_BATCH_SIZE,
        name: str = "projection",
        first_retry: float = FIRST_RETRY_SECONDS,
        max_retry: float = MAX_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        lease: Lease | None = None,
    ) -> None:
        self.application = application
        self.projector = projector
        self.batch_size = batch_size
        self.name = name
        self.first_retry = first_retry
        self.max_retry = max_retry
        self.lease = lease or OwnLease()
        self._clock = clock
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: ProjectionFailure | None = None
        self._retry_at = 0.0
        # The furthest position this process has seen reached. A position
        # moved back (a Redis shard lost feed writes) is projected again
        # anyway, so a reader that saw it pass its own writes need not wait.
        self._reached = 0

    @property
    def position(self) -> int:
        """The id of the last event projected (0 when none)."""
        position = self.projector.tracking_recorder.max_tracking_id(self.application.name) or 0
        self._reached = max(self._reached, position)
        return position

    @property
    def failure(self) -> ProjectionFailure | None:
        """The event this follower last failed to project, until it projects."""
        return self._failure

    def catch_up(
        self,
        on_batch: Callable[[int], object] | None = None,
        stop: int | None = None,
        until: float | None = None,
    ) -> int:
        """Project every event after ``position`` (up to ``stop``); return how
        many were projected. ``on_batch(n)`` is called after each batch;
        with ``until`` (a time of this follower's clock) it stops after the
        batch that ends past it. An event the projector fails on is noted as
        :attr:`failure` and its error raised; the position stays before it."""
        return self._follow(self._project_each, on_batch, stop, until)

    def catch_up_in_batches(
        self, on_batch: Callable[[int], object] | None = None, stop: int | None = None
    ) -> int:
        """:meth:`catch_up`, each batch projected at once through
        ``process_batch`` when the projector is a :class:`BatchProjector`
        (one position recorded per batch: a crash re-projects the batch,
        whose writes are idempotent). A failing event is noted and its error
        raised as :meth:`catch_up` does, the events before it projected."""
        projector = self.projector
        if not isinstance(projector, BatchProjector):
            return self.catch_up(on_batch, stop)

        def project(notifications: Sequence[Notification], previous: int) -> int:
            if not self._project_batch(projector, notifications, previous):
                return 0
            return len(notifications)

        return self._follow(project, on_batch, stop, None)

    def _follow(
        self,
        project: Callable[[Sequence[Notification], int], int],
        on_batch: Callable[[int], object] | None,
        stop: int | None,
        until: float | None,
    ) -> int:
        """Read the log after ``position`` a batch at a time and hand each
        batch to ``project(notifications, previous position)``, which returns
        how many of them it projected: fewer than all when the position moved
        meanwhile (it goes on from where the position is then)."""
        processed = 0
        with self._lock:
            start = self.position
            while True:
                notifications = self.application.recorder.select_notifications(
                    start=start, limit=self.batch_size, stop=stop, inclusive_of_start=False
                )
                if not notifications:
                    return self._caught_up(start, processed)
                projected = project(notifications, start)
                processed += projected
                if projected < len(notifications):
                    start = self.position  # it moved: go on from where it is
                    continue
                start = notifications[-1].id
                if on_batch is not None:
                    on_batch(len(notifications))
                if until is not None and self._clock() >= until:
                    self._reached = max(self._reached, start)
                    return processed
                if len(notifications) < self.batch_size:
                    return self._caught_up(start, processed)

    def _caught_up(self, position: int, processed: int) -> int:
        """The end of the log (or ``stop``) reached at ``position``."""
        self._forget_failure_before(position)
        self._reached = max(self._reached, position)
        return processed

    def _project_each(self, notifications: Sequence[Notification], previous: int) -> int:
        """Project ``notifications`` one event at a time; how many, until the
        position moved meanwhile (see :meth:`_project`)."""
        for count, notification in enumerate(notifications):
            try:
                projected = self._project(notification, previous)
            except Exception as error:
                self._note_failure(notification, error)
                raise
            if not projected:
                return count
            previous = notification.id
        return len(notifications)

    def _project_batch(
        self, projector: BatchProjector, notifications: Sequence[Notification], previous: int
    ) -> bool:
        """Project ``notifications``, the events after position ``previous``;
        False when the position moved meanwhile (see :meth:`_project`)."""
        batch = []
        unreadable: tuple[Notification, Exception] | None = None
        for notification in notifications:
            try:
                event = self.application.mapper.to_domain_event(notification)
            except Exception as error:  # projected up to it, then noted
                unreadable = (notification, error)
                break
            batch.append((event, Tracking(self.application.name, notification.id)))
        try:
            if batch:
                projector.process_batch(batch)
        except BatchStopped as stopped:
            failed = stopped.error
            moved = stopped.recording and isinstance(failed, IntegrityError)
            if moved and self.position != previous:
                return False
            self._note_failure(notifications[stopped.index], failed)
            raise failed from None
        if unreadable is not None:
            self._note_failure(*unreadable)
            raise unreadable[1]
        return True

    def try_catch_up(
        self, force: bool = False, stop: int | None = None, until: float | None = None
    ) -> bool:
        """:meth:`catch_up`, never raising: whether it got to the end of the
        log (or to ``stop``, or to ``until``). After a failure it does nothing
        until the retry is due (unless ``force``), so readers do not each pay
        for an event that fails."""
        if self._failure is not None and not force and self._clock() < self._retry_at:
            return False
        try:
            self.catch_up(stop=stop, until=until)
        except Exception:  # noted and logged by catch_up; the retry is scheduled
            return False
        return True

    def wait_for(self, position: int, timeout: float, force: bool = False) -> bool:
        """Wait until the projection has reached ``position`` (a reader's own
        write), at most ``timeout`` seconds; whether it has. With the lease
        free or held here, it projects up to there itself; with it held
        elsewhere, it watches the position recorded there. It gives up at
        once on an event that fails here: the reader then sees the
        projection as it is. With ``force`` it catches up even past a
        position it saw reached (which may have moved back since), and
        retries a failed event at once rather than when due. It projects no
        further than ``position`` and stops at ``timeout`` even then, between
        batches; if another thread here is projecting, it waits for it no
        longer than ``timeout`` either."""
        if self._reached >= position and not force:
            return True
        deadline = self._clock() + timeout
        while True:
            if self.lease.try_acquire():
                if not self._lock.acquire(timeout=max(0.0, deadline - self._clock())):
                    return False  # this process's thread is busy with a backlog
                try:
                    self.try_catch_up(force, stop=position, until=deadline)
                finally:
                    self._lock.release()
                if self._reached >= position or self.position >= position:
                    return True
                if self._failure is not None:
                    return False
            elif self.position >= position:
                return True
            if self._clock() >= deadline or self._stopping.wait(WATCH_INTERVAL_SECONDS):
                return False

    def nudge(self) -> None:
        """Wake the background thread: an event was just written here."""
        self._wake.set()

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

    def _note_failure(self, notification: Notification, error: Exception) -> None:
        previous = self._failure
        same_event = previous is not None and previous.event_id == notification.id
        attempts = previous.attempts + 1 if previous is not None and same_event else 1
        failure = ProjectionFailure(
            event_id=notification.id,
            topic=notification.topic,
            error_type=type(error).__name__,
            error=f"{type(error).__name__}: {error}",
            attempts=attempts,
            since=previous.since if previous is not None and same_event else _now(),
        )
        self._failure = failure
        delay = min(self.max_retry, self.first_retry * 2 ** (attempts - 1))
        self._retry_at = self._clock() + delay
        where = f"projection {self.name!r} on event {notification.id} ({notification.topic})"
        if attempts < STUCK_AFTER_ATTEMPTS:
            logger.warning(
                "%s failed (attempt %d), retrying in %.1f s: %s",
                where,
                attempts,
                delay,
                failure.error,
                exc_info=attempts == 1,
            )
        else:
            logger.error(
                "%s is stuck after %d attempts since %s: %s. Commands are still stored; "
                "the events after it wait, and it is retried every %.0f s (see %s)",
                where,
                attempts,
                failure.since.isoformat(timespec="seconds"),
                failure.error,
                delay,
                OPERATIONS_DOC,
                exc_info=attempts == STUCK_AFTER_ATTEMPTS,
            )

    def _forget_failure_before(self, position: int) -> None:
        """The failed event is projected now (here or by another process)."""
        failure = self._failure
        if failure is not None and position >= failure.event_id:
            self._failure = None
            logger.warning(
                "projection %r resumed: event %d (%s) projected after %d failed attempts",
                self.name,
                failure.event_id,
                failure.topic,
                failure.attempts,
            )

    def status(self) -> ProjectionStatus:
        """Where this projection is, what it waits on, and any failure."""
        head = self.application.recorder.max_notification_id() or 0
        try:
            position: int | None = self.position
        except Exception as error:  # the store holding the position is out of reach
            logger.warning("could not read the position of %r: %s", self.name, error)
            position = None
        pending = None
        if position is not None and position < head:
            pending = self._pending_event(position)
        return ProjectionStatus(self.name, position, head, pending, self._failure)

    def _pending_event(self, position: int) -> PendingEvent | None:
        found = self.application.recorder.select_notifications(
            start=position, limit=1, inclusive_of_start=False
        )
        if not found:
            return None
        notification = found[0]
        try:
            event = self.application.mapper.to_domain_event(notification)
        except Exception:  # an event that cannot even be read says so when projected
            event = None
        stored_at = getattr(event, "timestamp", None)
        if not isinstance(stored_at, datetime):
            stored_at = None
        return PendingEvent(notification.id, notification.topic, stored_at)

    def start(self, poll_interval: float = 0.2) -> None:
        """Keep catching up in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, args=(poll_interval,), name=f"log-follower {self.name}", daemon=True
        )
        self._thread.start()

    def _run(self, poll_interval: float) -> None:
        """Project while holding the lease; without it, ask for it at each
        poll (its holder may have died)."""
        while not self._stopping.is_set():
            try:
                if self.lease.try_acquire():
                    self.try_catch_up()
            except Exception:  # the lease's store is out of reach: ask again later
                logger.exception("projection %r: could not ask for its lease", self.name)
            wait = poll_interval
            if self._failure is not None:
                wait = max(wait, self._retry_at - self._clock())
            self._wake.wait(wait)
            self._wake.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.lease.release()


def catch_up_each(
    followers: Sequence[LogFollower], on_batch: Callable[[int], object] | None = None
) -> None:
    """Catch each follower up as far as it goes, then raise the first failure:
    an event one projection fails on does not hold the others back."""
    failures: list[Exception] = []
    for follower in followers:
        try:
            follower.catch_up(on_batch=on_batch)
        except Exception as error:  # noted and logged by the follower
            failures.append(error)
    if failures:
        raise failures[0]


def _now() -> datetime:
    return datetime.now(UTC)

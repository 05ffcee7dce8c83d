"""Feed workers running inside a test, beside the web's Chirp."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dramatiq import Worker

from application.service import Chirp
from chirp.bootstrap import build_chirp, build_workers
from chirp.settings import Settings
from chirp.workers import FeedWorkers


@dataclass
class RunningWorkers:
    workers: FeedWorkers
    worker_chirp: Chirp  # the workers' own Chirp: their projector and position
    web: Chirp  # a web process's Chirp: commands, and pages

    def join(self, timeout_ms: int = 20_000) -> None:
        """Wait until the workers' queue is empty and nothing is in flight."""
        self.workers.broker.join(self.workers.queue_name, timeout=timeout_ms)


@contextmanager
def running_workers(settings: Settings, threads: int = 4) -> Iterator[RunningWorkers]:
    """The feed workers ``settings`` wire, consuming in this process with
    ``threads`` threads, and a web Chirp of the same settings; all stopped
    and closed on exit."""
    workers, worker_chirp = build_workers(settings)
    web = build_chirp(settings)
    worker = Worker(workers.broker, worker_timeout=100, worker_threads=threads)
    worker.start()
    try:
        yield RunningWorkers(workers, worker_chirp, web)
    finally:
        worker.stop()
        web.close()
        worker_chirp.close()
        workers.broker.close()

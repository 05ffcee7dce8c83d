"""The process's one Chirp instance, built on first use (never at import time).

Each web process builds Chirp from the environment, catches up with the event
log (rebuilding in-memory feeds) and then keeps following the log in a
background thread, so several processes on one data directory converge:
each one's own commands are projected at once, the others' within a poll.
"""

from __future__ import annotations

import threading

from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings

_lock = threading.Lock()
_chirp: Chirp | None = None
POLL_INTERVAL_SECONDS = 0.25


def get_chirp() -> Chirp:
    global _chirp
    if _chirp is None:
        with _lock:
            if _chirp is None:
                chirp = build_chirp(Settings.from_env())
                chirp.sync()
                chirp.start_following(POLL_INTERVAL_SECONDS)
                _chirp = chirp
    return _chirp


def use_chirp(chirp: Chirp | None) -> Chirp | None:
    """Replace the process's Chirp (tests); returns the previous one."""
    global _chirp
    with _lock:
        previous, _chirp = _chirp, chirp
    return previous

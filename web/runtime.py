"""The process's one Chirp instance, built on first use (never at import time).

Each web process builds Chirp from the environment, catches up with the event
log (rebuilding in-memory feeds) and then keeps following the log in
background threads: each projection is run by the process holding its lease,
woken at once by commands written there, within a poll by the others'.
"""

from __future__ import annotations

import threading

from application.service import Chirp
from chirp.bootstrap import build_chirp
from chirp.settings import Settings

_lock = threading.Lock()
_chirp: Chirp | None = None
POLL_INTERVAL_SECONDS = 0.25
# At start, how long to wait for projections another process runs (this
# process's own, in-memory feeds are rebuilt whatever it takes).
STARTUP_WAIT_SECONDS = 2.0


def get_chirp() -> Chirp:
    global _chirp
    if _chirp is None:
        with _lock:
            if _chirp is None:
                chirp = build_chirp(Settings.from_env())
                chirp.sync(timeout=STARTUP_WAIT_SECONDS)
                chirp.start_following(POLL_INTERVAL_SECONDS)
                _chirp = chirp
    return _chirp


def use_chirp(chirp: Chirp | None) -> Chirp | None:
    """Replace the process's Chirp (tests); returns the previous one."""
    global _chirp
    with _lock:
        previous, _chirp = _chirp, chirp
    return previous

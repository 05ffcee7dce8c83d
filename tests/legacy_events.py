"""Events as an older Chirp stored them, before today's rules refused them.

Rules run only when a command is made, so a log written earlier still
replays: these helpers save such events directly, the way that log holds them.
"""

from __future__ import annotations

from application.service import Chirp
from domain.user import User


def store_user_from_an_old_log(chirp: Chirp, username: str, display_name: str) -> None:
    """Save a ``UserRegistered`` event whose display name today's rule refuses,
    and project it, as a replay of an old log would."""
    chirp.commands.save(User(username=username, display_name=display_name))
    chirp.sync()

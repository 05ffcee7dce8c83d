"""Apply a workload file (``shared/workload/FORMAT.md``) to Chirp's event store.

Benchmarks load the same generated network into Chirp and into a baseline.
Workload usernames may be longer than Twitter's 15 characters; they are
shortened the same way everywhere (in ``register`` ops and in ``@mentions``
inside posts), keeping the numeric suffix that makes them unique.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import regex

from application.commands import ChirpApplication
from domain.errors import DomainError

MAX_USERNAME = 15
_NAME = regex.compile(r"^([a-z]+)([0-9]+)$")
_MENTION = regex.compile(r"@([a-z]+[0-9]+)")


class WorkloadError(Exception):
    """The workload file is malformed or does not apply; the message says where."""


def chirp_username(name: str) -> str:
    if len(name) <= MAX_USERNAME:
        return name
    match = _NAME.match(name)
    if match is None:
        raise WorkloadError(f"username {name!r} is too long and not of the form letters+digits")
    letters, digits = match.groups()
    return letters[: MAX_USERNAME - len(digits)] + digits


def chirp_text(text: str) -> str:
    return _MENTION.sub(lambda m: "@" + chirp_username(m.group(1)), text)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load_workload(
    commands: ChirpApplication,
    lines: Iterable[str],
    on_op: Callable[[], object] | None = None,
) -> dict[str, int]:
    """Apply each op in order; return how many of each were applied."""
    post_ids: list[UUID] = []
    applied: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            op: dict[str, Any] = json.loads(line)
            kind = op["op"]
            _apply(commands, kind, op, post_ids)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as error:
            raise WorkloadError(f"line {number}: malformed op ({error!r})") from None
        except DomainError as error:
            raise WorkloadError(f"line {number}: {error}") from None
        applied[kind] = applied.get(kind, 0) + 1
        if on_op is not None:
            on_op()
    return applied


def _apply(commands: ChirpApplication, kind: str, op: dict[str, Any], post_ids: list[UUID]) -> None:
    if kind == "register":
        commands.register(chirp_username(op["username"]))
    elif kind == "follow":
        commands.follow(chirp_username(op["follower"]), chirp_username(op["followee"]))
    elif kind == "unfollow":
        commands.unfollow(chirp_username(op["follower"]), chirp_username(op["followee"]))
    elif kind == "post":
        post_ids.append(
            commands.post(
                chirp_username(op["username"]), chirp_text(op["text"]), parse_time(op["at"])
            )
        )
    elif kind == "delete":
        commands.delete_post(post_ids[int(op["post_index"])], chirp_username(op["username"]))
    # Unknown ops are ignored, as the format says.

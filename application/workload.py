"""Apply a workload file (``shared/workload/FORMAT.md``) to Chirp's event store.

Benchmarks load the same generated network into Chirp and into a baseline.
Workload usernames may be longer than Twitter's 15 characters; they are
shortened the same way everywhere (in ``register`` ops and in ``@mentions``
inside posts), keeping the numeric suffix that makes them unique.

``load_workload`` applies the ops through a ``CommandBatch``: the aggregates'
own methods check every rule, but loaded users stay in memory and the events
of ``batch_size`` ops are stored in one write. ``load_workload_one_by_one``
applies each op as its own command, as a web request would (the slow way,
kept to compare with). Either stops at the first op refused or malformed,
naming its line, with the ops before it stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import regex
from eventsourcing.persistence import RecordConflictError

from application.command_batch import CommandBatch
from application.commands import ChirpApplication
from domain.errors import DomainError

MAX_USERNAME = 15
LOAD_BATCH_SIZE = 5000
_MALFORMED = (json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError)
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
    batch_size: int = LOAD_BATCH_SIZE,
) -> dict[str, int]:
    """Apply each op in order, storing the events of ``batch_size`` ops at
    a time; return how many of each were applied."""
    loader = _BatchedLoader(commands, batch_size)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            op: dict[str, Any] = json.loads(line)
            kind = op["op"]
            loader.apply(number, kind, op)
        except _MALFORMED as error:
            loader.save()
            raise WorkloadError(f"line {number}: malformed op ({error!r})") from None
        if on_op is not None:
            on_op()
    loader.save()
    return loader.applied


def load_workload_one_by_one(
    commands: ChirpApplication,
    lines: Iterable[str],
    on_op: Callable[[], object] | None = None,
) -> dict[str, int]:
    """Apply each op in order as a command of its own; return how many of
    each were applied."""
    post_ids: list[UUID] = []
    applied: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            op: dict[str, Any] = json.loads(line)
            kind = op["op"]
            _apply_numbered(commands, number, kind, op, post_ids)
        except _MALFORMED as error:
            raise WorkloadError(f"line {number}: malformed op ({error!r})") from None
        applied[kind] = applied.get(kind, 0) + 1
        if on_op is not None:
            on_op()
    return applied


class _BatchedLoader:
    """Ops applied to a ``CommandBatch`` and stored every ``batch_size``."""

    def __init__(self, commands: ChirpApplication, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.commands = commands
        self.batch = CommandBatch(commands)
        self.batch_size = batch_size
        self.applied: dict[str, int] = {}
        self.post_ids: list[UUID] = []
        self._held: list[tuple[int, str, dict[str, Any]]] = []  # ops not stored yet
        self._posts_stored = 0  # how many of post_ids are stored

    def apply(self, number: int, kind: str, op: dict[str, Any]) -> None:
        """Apply op ``number``; a WorkloadError when the domain refuses it."""
        try:
            _apply(self.batch, kind, op, self.post_ids)
        except DomainError as error:
            if not self.save():
                raise WorkloadError(f"line {number}: {error}") from None
            # Another writer changed the store: ask it again, as it is now.
            _apply_numbered(self.commands, number, kind, op, self.post_ids)
            self._posts_stored = len(self.post_ids)
        else:
            self._held.append((number, kind, op))
        self.applied[kind] = self.applied.get(kind, 0) + 1
        if len(self._held) >= self.batch_size:
            self.save()

    def save(self) -> bool:
        """Store the ops held; True when another writer had changed what
        they touch, so that they were applied again one by one."""
        held, self._held = self._held, []
        try:
            self.batch.save()
        except RecordConflictError:  # a name taken, a user changed: nothing stored
            self.batch.forget()
            del self.post_ids[self._posts_stored :]
            for number, kind, op in held:
                _apply_numbered(self.commands, number, kind, op, self.post_ids)
            self._posts_stored = len(self.post_ids)
            return True
        self._posts_stored = len(self.post_ids)
        self.batch.forget_posts()
        return False


def _apply_numbered(
    commands: ChirpApplication, number: int, kind: str, op: dict[str, Any], post_ids: list[UUID]
) -> None:
    """Apply op ``number`` as a command; a WorkloadError when refused."""
    try:
        _apply(commands, kind, op, post_ids)
    except DomainError as error:
        raise WorkloadError(f"line {number}: {error}") from None


def _apply(
    commands: ChirpApplication | CommandBatch, kind: str, op: dict[str, Any], post_ids: list[UUID]
) -> None:
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

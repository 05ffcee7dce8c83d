"""Typed access to an aggregate's new events in tests."""

from __future__ import annotations

from typing import TypeVar

from eventsourcing.domain import Aggregate

E = TypeVar("E")


def new_events(aggregate: Aggregate, kind: type[E]) -> list[E]:
    """The events ``aggregate`` has not saved yet (collected: a second call
    sees none of them), each checked to be a ``kind``."""
    events = aggregate.collect_events()
    assert all(isinstance(event, kind) for event in events), events
    return [event for event in events if isinstance(event, kind)]

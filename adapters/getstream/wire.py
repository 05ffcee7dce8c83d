"""GetStream's wire format: activities as the API takes and gives them back.

stream-python sends and returns JSON dicts; these functions turn Chirp's
activities into them and read GetStream's answers back, refusing what
GetStream would refuse and failing on answers that are not GetStream's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

from application.feeds import Activity, FeedInputError, FeedUnavailableError

T = TypeVar("T")

#: Field names GetStream gives a meaning of its own; an activity's ``extra``
#: may not use them, and they are not read back as ``extra``.
RESERVED_FIELDS: Final = frozenset(
    {
        "id",
        "actor",
        "verb",
        "object",
        "foreign_id",
        "time",
        "to",
        "target",
        "origin",
        "activity_id",
        "activity",
        "analytics",
        "extra_context",
        "is_read",
        "is_seen",
        "score",
        "site_id",
        "duration",
    }
)

# stream-python turns any string in this form (or ``%Y-%m-%d``) into a date.
WIRE_TIME = "%Y-%m-%dT%H:%M:%S.%f"
# Characters of a foreign id sent as they are in a URL path segment; the rest
# (``/``, ``?``, ``#``, ``%``, spaces, non-ASCII) are percent-encoded.
SEGMENT_SAFE = ":@!$&'()*+,;="


def activity_data(activity: Activity) -> dict[str, Any]:
    reserved = sorted(RESERVED_FIELDS.intersection(str(name) for name in activity.extra))
    if reserved:
        raise FeedInputError(
            f"extra field(s) {', '.join(reserved)} are reserved by GetStream; rename them"
        )
    data: dict[str, Any] = {str(name): str(value) for name, value in activity.extra.items()}
    data.update(
        actor=str(activity.actor),
        verb=str(activity.verb),
        object=str(activity.object),
        foreign_id=activity.foreign_id,
        time=activity.time.isoformat(timespec="microseconds"),
    )
    return data


def activity_id_of(result: Mapping[str, Any]) -> str:
    aid = result.get("id")
    if not isinstance(aid, str) or not aid:
        raise FeedUnavailableError("GetStream stored the activity but returned no id")
    return aid


def results_of(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rows = result.get("results")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise FeedUnavailableError("GetStream answered without a list of results")
    return rows


def path_segment(text: str) -> str:
    segment = quote(text, safe=SEGMENT_SAFE)
    # "." and ".." would be resolved away as path steps.
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


def field_text(value: object) -> str:
    """A field value as the string Chirp wrote. stream-python turns strings
    that look like times or dates into ``datetime`` / ``date``: those are
    written back in the same form, exact for its canonical forms."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime(WIRE_TIME)
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def naive_utc(value: object, aid: str) -> datetime:
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None:
        raise FeedUnavailableError(f"GetStream returned activity {aid} without a readable time")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

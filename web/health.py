"""The health page, ``/health``: where each projection of this process is.

JSON for load balancers and people: 200 while every projection is ok, catching
up or retrying an event; 503 when one is stuck on an event or cannot read its
position. A failing event's error message is in this process's log, not here:
the page says only its type.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from application.projection_status import ProjectionStatus
from web.runtime import get_chirp


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    statuses = get_chirp().projections()
    healthy = all(status.healthy for status in statuses)
    body = {
        "status": "ok" if healthy else "unhealthy",
        "projections": [_describe(status) for status in statuses],
    }
    return JsonResponse(body, status=200 if healthy else 503)


def _describe(status: ProjectionStatus) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": status.name,
        "state": status.state,
        "position": status.position,
        "head": status.head,
        "lag": status.lag,
    }
    if status.pending is not None:
        pending = status.pending
        described["waiting_on"] = {
            "event": pending.event_id,
            "topic": pending.topic,
            "stored_at": pending.stored_at.isoformat() if pending.stored_at else None,
        }
    if status.failure is not None:
        failure = status.failure
        described["failure"] = {
            "event": failure.event_id,
            "topic": failure.topic,
            "error_type": failure.error_type,
            "attempts": failure.attempts,
            "since": failure.since.isoformat(),
        }
    return described

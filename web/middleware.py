"""Turn the application's typed errors into pages with the right HTTP status.

Views let ``DomainError`` propagate; a person sees its message on a 4xx page,
never a 500 or a traceback. A feed service that cannot be reached is a 503,
and so is a store still busy with other writers after its busy timeout: the
write that met it was not made, and trying again in a moment works.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from eventsourcing.persistence import ConnectionUnavailableError

from application.feeds import FeedUnavailableError
from domain.errors import DomainError, NotTheAuthor, TweetNotFound, UserNotFound

NOT_FOUND = (UserNotFound, TweetNotFound)
SQLITE_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
RETRY_AFTER_SECONDS = 5


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) says a store is
    busy: SQLite still locked by another writer after the busy timeout, or
    no connection of eventsourcing's pool free in time."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionUnavailableError):
            return True
        if isinstance(cause, sqlite3.OperationalError):
            return cause.sqlite_errorcode & 0xFF in SQLITE_BUSY_CODES
        cause = cause.__cause__ or cause.__context__
    return False


class DomainErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, FeedUnavailableError):
            return render(
                request,
                "web/error.html",
                {"title": "Chirp is catching its breath", "message": "Feeds are unavailable "
                 "right now. Your posts are safe; please try again in a moment."},
                status=503,
            )  # fmt: skip
        if is_busy(exception):
            response = render(
                request,
                "web/error.html",
                {"title": "Chirp is busy", "message": "Many people are writing at this "
                 "moment and this did not get through. Please try again in a moment."},
                status=503,
            )  # fmt: skip
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        if not isinstance(exception, DomainError):
            return None
        if isinstance(exception, NOT_FOUND):
            status, title = 404, "Not found"
        elif isinstance(exception, NotTheAuthor):
            status, title = 403, "Not allowed"
        else:
            status, title = 400, "That did not work"
        return render(
            request, "web/error.html", {"title": title, "message": str(exception)}, status=status
        )

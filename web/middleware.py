"""Turn the application's typed errors into pages with the right HTTP status.

Views let ``DomainError`` propagate; a person sees its message on a 4xx page,
never a 500 or a traceback. A feed service that cannot be reached is a 503,
and so is a Redis cache (``CHIRP_CACHE_URL``, where the log-in limits count).
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from application.feeds import FeedUnavailableError
from domain.errors import DomainError, NotTheAuthor, TweetNotFound, UserNotFound

NOT_FOUND = (UserNotFound, TweetNotFound)
CACHE_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


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
        if isinstance(exception, CACHE_UNAVAILABLE):
            return render(
                request,
                "web/error.html",
                {"title": "Chirp is catching its breath", "message": "A service Chirp needs "
                 "is unavailable right now; please try again in a moment."},
                status=503,
            )  # fmt: skip
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

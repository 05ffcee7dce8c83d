"""Error pages in Chirp's layout, with a message a person can act on."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "web/error.html", {"title": title, "message": message}, status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page(request, 404, "Not found", "There is nothing here. Check the address.")


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page(request, 403, "Not allowed", "You cannot do that here.")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page(request, 400, "That did not work", "The request was not understood.")


def server_error(request: HttpRequest) -> HttpResponse:
    return _page(request, 500, "Something broke", "Sorry: we could not show this page.")


def too_many_attempts(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """django-ratelimit's ``RATELIMIT_VIEW``: a log-in or sign-up over its limit."""
    response = _page(request, 429, "Too many attempts", "Too many attempts, try again in a minute.")
    response["Retry-After"] = "60"
    return response

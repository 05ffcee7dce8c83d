"""A person's pages show their own writes, whichever process serves them.

Commands do not wait for the projections. The position of a person's last
write travels in their session, and each request's reads wait (briefly) until
the projections have reached it: the page after a post shows the post.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from web.runtime import get_chirp

SESSION_KEY = "chirp_last_write"


class ReadYourWritesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        chirp = get_chirp()
        known = request.session.get(SESSION_KEY, 0)
        if not isinstance(known, int):
            known = 0
        chirp.read_after(known)
        response = self.get_response(request)
        written = chirp.read_position()
        if written > known:
            request.session[SESSION_KEY] = written
        return response

"""Turn the application's typed errors into pages with the right HTTP status,
and refuse requests whose text is not text.

Views let ``DomainError`` propagate; a person sees its message on a 4xx page,
never a 500 or a traceback; a command that kept losing races to other writers
is a 409. A feed service that cannot be reached is a 503,
and so is a Redis cache (``CHIRP_CACHE_URL``, where the log-in limits count),
and a store still busy with other writers after its busy timeout: the write
that met it was not made, and trying again in a moment works. So is a
PostgreSQL server that went away or cannot be reached: a command's events
are stored in one transaction, all or none, and sending the form again is
safe (its token makes a post land once; follows and deletes are idempotent).
A query string or form body that is not valid UTF-8 is a 400 before any view
sees it.
"""

from __future__ import annotations

import codecs
import sqlite3
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from urllib.parse import unquote_to_bytes

import psycopg
import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from eventsourcing.persistence import ConnectionUnavailableError

from application.commands import ConcurrentChange
from application.feeds import FeedUnavailableError
from domain.errors import DomainError, NotTheAuthor, TweetNotFound, UserNotFound

NOT_FOUND = (UserNotFound, TweetNotFound)
CACHE_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
SQLITE_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
RETRY_AFTER_SECONDS = 5
FEEDS_UNAVAILABLE = (
    "Chirp is catching its breath",
    "Feeds are unavailable right now. Your posts are safe; please try again in a moment.",
)
SERVICE_UNAVAILABLE = (
    "Chirp is catching its breath",
    "A service Chirp needs is unavailable right now; please try again in a moment.",
)
DATABASE_UNAVAILABLE = (
    "Chirp is catching its breath",
    "Chirp's database cannot be reached right now, so this may not have been saved. "
    "Please try again in a moment: sending it again will not save it twice.",
)
STORE_BUSY = (
    "Chirp is busy",
    "Many people are writing at this moment and this did not get through. "
    "Please try again in a moment.",
)


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


def database_unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) says PostgreSQL
    cannot be reached: the connection broke, none could be made in time, or
    the server refused to go on (psycopg's operational and interface
    errors; a mistake in a query is a ``ProgrammingError``, a 500)."""
    return any(
        isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError)
        for cause in _causes(error)
    )


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and the errors it was raised from or during, each once."""
    found: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and all(cause is not seen for seen in found):
        found.append(cause)
        cause = cause.__cause__ or cause.__context__
    return found


class DomainErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, FeedUnavailableError):
            return _try_again(request, FEEDS_UNAVAILABLE)
        if isinstance(exception, CACHE_UNAVAILABLE):
            return _try_again(request, SERVICE_UNAVAILABLE)
        if is_busy(exception):
            response = _try_again(request, STORE_BUSY)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        if database_unreachable(exception):
            response = _try_again(request, DATABASE_UNAVAILABLE)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        if not isinstance(exception, DomainError):
            return None
        if isinstance(exception, ConcurrentChange):
            status, title = 409, "Changed at the same moment"
        elif isinstance(exception, NOT_FOUND):
            status, title = 404, "Not found"
        elif isinstance(exception, NotTheAuthor):
            status, title = 403, "Not allowed"
        else:
            status, title = 400, "That did not work"
        return render(
            request, "web/error.html", {"title": title, "message": str(exception)}, status=status
        )


def _try_again(request: HttpRequest, page: tuple[str, str]) -> HttpResponse:
    """A 503 page (title, message): nothing is wrong with the request, try it
    again later."""
    title, message = page
    return render(request, "web/error.html", {"title": title, "message": message}, status=503)


class RefuseInvalidUtf8Middleware:
    """Answer 400 to a query string or form body that is not valid in its
    character set (UTF-8 unless a multipart body declares another). Django
    decodes them with replacement characters, which would store mojibake in
    place of what the person wrote."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = _undecodable_part(request)
        if refused is not None:
            where, charset = refused
            message = (
                f"The {where} of this request is not valid {charset} text, so it was not "
                "used. Send it again from Chirp's own pages, or encode it as UTF-8."
            )
            return render(
                request,
                "web/error.html",
                {"title": "That did not work", "message": message},
                status=400,
            )
        return self.get_response(request)


def _undecodable_part(request: HttpRequest) -> tuple[str, str] | None:
    """Which part of ``request`` is not text in the character set Django will
    decode it with, and that character set's name; None when all of it is."""
    charset = codecs.lookup(request.encoding or settings.DEFAULT_CHARSET).name.upper()
    # WSGI hands the raw query string over as Latin-1 text (PEP 3333).
    query = request.META.get("QUERY_STRING", "")
    if not _decodes(unquote_to_bytes(query.encode("latin-1", "replace")), charset):
        return "address", charset
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    if request.content_type == "application/x-www-form-urlencoded":
        # Django reads these as UTF-8 whatever they declare (as HTML does).
        body = request.body.replace(b"+", b" ")
        return None if _decodes(unquote_to_bytes(body), "utf-8") else ("form", "UTF-8")
    if request.content_type == "multipart/form-data":
        return None if _multipart_fields_decode(request, charset) else ("form", charset)
    return None


def _multipart_fields_decode(request: HttpRequest, charset: str) -> bool:
    """Whether every field of a multipart body that is not a file is text."""
    head = f"Content-Type: {request.META.get('CONTENT_TYPE', '')}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.body)
    if not message.is_multipart():
        return True
    for part in message.iter_parts():
        if part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and not _decodes(payload, charset):
            return False
    return True


def _decodes(data: bytes, charset: str) -> bool:
    try:
        data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return False
    return True

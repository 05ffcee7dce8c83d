"""A local GetStream-compatible HTTP server for tests (a test tool, not shipped).

It serves the subset of GetStream's Feeds v2 REST API that stream-python 5.x
calls for Chirp's feed operations, under ``/api/v1.0/``:

- ``feed/{group}/{id}/``: POST adds an activity (or ``{"activities": [...]}``),
  GET reads (``limit``, ``id_lt``);
- ``feed/{group}/{id}/{foreign_id}/?foreign_id=1``: DELETE removes by foreign id;
- ``feed/{group}/{id}/follows/``: POST follows, GET lists followed feeds;
  ``feed/{group}/{id}/followers/``: GET lists followers;
- ``feed/{group}/{id}/follows/{group:id}/``: DELETE unfollows (``keep_history``);
- ``feed/add_to_many/``, ``follow_many/``, ``unfollow_many/``: the batch forms;
- ``activities/``: GET by ``ids`` or by ``foreign_ids`` + ``timestamps``; POST
  replaces activities' data by ``foreign_id`` + ``time`` (update_activities);
- ``feed_targets/{group}/{id}/activity_to_targets/``: POST adds ``to``
  targets (``added_targets``) to an activity the feed holds, by
  ``foreign_id`` + ``time``.

An activity's ``to`` takes at most 100 targets, and so does ``added_targets``,
as on GetStream.

Requests are checked as GetStream checks them: the ``api_key`` query
parameter names an app; ``Authorization`` holds a JWT signed (HS256) with
that app's secret, with ``stream-auth-type: jwt``; the token's ``resource``,
``action`` and ``feed_id`` must allow the operation; ``to`` targets and follow
targets carry their feed's token. Errors have GetStream's JSON shape
(``code``, ``exception``, ``detail``, ``status_code``, ``duration``).

Each app keeps its feeds in an ``InMemoryFeedProvider``, the reference
adapter, so the server answers as the port's rules say; apps are independent,
which gives a test (or a Hypothesis example) a fresh store by creating an app.

Tests queue faults with :meth:`GetStreamServer.inject`: an error answer (a
5xx, a rate limit, a body that is no GetStream JSON), a delay longer than the
client's timeout, with or without the request applied first, for the next N
requests or for those whose path contains a given string.

Left out, answered with an InputException: activities without ``foreign_id``
and ``time``, removal by activity id, reads by ``offset`` or ``id_gt`` and the
other filters, nested custom fields. The ``activities/`` lookup remembers
every activity written, even one removed since.
"""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jwt
import stream

from adapters.inmemory.feeds import InMemoryFeedProvider
from application.feeds import (
    DEFAULT_COPY_LIMIT,
    DEFAULT_READ_LIMIT,
    Activity,
    FeedId,
    FeedInputError,
    Follow,
    StoredActivity,
)

WIRE_TIME = "%Y-%m-%dT%H:%M:%S.%f"
MAX_TO_TARGETS = 100
MAX_FOLLOW_PAGE = 500
FEED_PART = re.compile(r"[\w-]+")
# An activity's own fields; "target" is kept with the custom fields.
STANDARD_FIELDS = frozenset({"actor", "verb", "object", "foreign_id", "time", "to"})
RESERVED_FIELDS = frozenset(
    {
        "id",
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
READ_PARAMS = frozenset({"api_key", "limit", "id_lt"})


class ApiError(Exception):
    """An error answer, in GetStream's shape."""

    def __init__(self, status: int, code: int | None, exception: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.exception = exception
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "exception": self.exception,
            "detail": self.detail,
            "status_code": self.status,
        }


def input_error(detail: str) -> ApiError:
    return ApiError(400, 4, "InputException", detail)


def signature_error(detail: str) -> ApiError:
    return ApiError(401, 3, "SignatureException", detail)


def error_body(status: int, code: int | None, exception: str, detail: str) -> bytes:
    return json.dumps(ApiError(status, code, exception, detail).body()).encode()


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or besides) answering a request normally.

    ``apply``: carry the request out first (a write that lands, then the
    answer is lost). ``delay``: seconds to wait before answering. ``status``:
    answer with this status and ``body`` instead of the real answer; None
    answers normally, after the delay (applying the request then, unless it
    was applied first).
    """

    status: int | None = None
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    delay: float = 0.0
    apply: bool = False

    @classmethod
    def server_error(cls, status: int = 500, apply: bool = False) -> Fault:
        body = json.dumps({"detail": "internal server error", "status_code": status}).encode()
        return cls(status=status, body=body, apply=apply)

    @classmethod
    def rate_limited(cls) -> Fault:
        body = error_body(429, 9, "RateLimitReached", "rate limit reached, try again later")
        return cls(status=429, body=body)

    @classmethod
    def error(cls, status: int, code: int, exception: str, detail: str) -> Fault:
        return cls(status=status, body=error_body(status, code, exception, detail))

    @classmethod
    def bad_gateway(cls, body: bytes = b"<html><body>502 Bad Gateway</body></html>") -> Fault:
        """A proxy's answer: no GetStream JSON (HTML, or JSON without ``detail``)."""
        content_type = "application/json" if body.startswith(b"{") else "text/html"
        return cls(status=502, body=body, content_type=content_type)

    @classmethod
    def slow(cls, delay: float, apply: bool = True) -> Fault:
        return cls(delay=delay, apply=apply)


@dataclass
class _Rule:
    fault: Fault
    remaining: int
    path: str | None
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == method)
            and (self.path is None or self.path in path)
        )


@dataclass(frozen=True)
class Recorded:
    """A request as the server received it: ``path`` is percent-decoded,
    ``body`` the decoded JSON (None without one, or if it is no JSON)."""

    method: str
    path: str
    query: Mapping[str, str]
    body: object = None


@dataclass
class App:
    key: str
    secret: str
    provider: InMemoryFeedProvider = field(default_factory=InMemoryFeedProvider)
    # Every activity written, for the activities/ lookup.
    activities: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_foreign_id_time: dict[tuple[str, datetime], str] = field(default_factory=dict)
    follow_times: dict[tuple[FeedId, FeedId], str] = field(default_factory=dict)
    # (origin feed, foreign_id, time) of each activity added to a feed and not
    # removed from it since: the activities whose targets may be updated.
    added: set[tuple[FeedId, str, datetime]] = field(default_factory=set)


class GetStreamServer:
    """The server; ``start`` it (or use it as a context manager), then
    ``create_app`` and ``client(app)`` for a stream-python client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps: dict[str, App] = {}
        self._rules: list[_Rule] = []
        self._requests: list[Recorded] = []
        self._in_flight = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        if self._httpd is not None:
            return
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="getstream-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> GetStreamServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        # stream-python prefixes "api." to any host name but localhost.
        return f"http://localhost:{self.port}"

    # -- apps and clients ---------------------------------------------------------

    def create_app(self) -> App:
        app = App(key=f"key{uuid.uuid4().hex[:16]}", secret=uuid.uuid4().hex + uuid.uuid4().hex)
        with self._lock:
            self._apps[app.key] = app
        return app

    def client(
        self,
        app: App,
        timeout: float = 5.0,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> Any:
        """A stream-python client for ``app`` (or for another key or secret)."""
        client = stream.connect(
            api_key or app.key, api_secret or app.secret, base_url=self.base_url, timeout=timeout
        )
        client.session.trust_env = False  # never through a proxy from the environment
        return client

    # -- faults and the request log -----------------------------------------------

    def inject(
        self, fault: Fault, times: int = 1, path: str | None = None, method: str | None = None
    ) -> None:
        """Apply ``fault`` to the next ``times`` requests (whose decoded path
        contains ``path`` and whose method is ``method``, when given)."""
        with self._lock:
            self._rules.append(_Rule(fault, times, path, method))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no request is being handled (a slow fault included)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._in_flight == 0:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("the GetStream test server is still busy")
            time.sleep(0.01)

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        return [
            r for r in self.requests if path in r.path and (method is None or r.method == method)
        ]

    def _record(self, method: str, raw_path: str, body: bytes) -> Fault | None:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        try:
            data = _json_body(body)
        except ApiError:
            data = None
        with self._lock:
            self._requests.append(Recorded(method, path, query, data))
            self._in_flight += 1
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    return rule.fault
        return None

    # -- the API ------------------------------------------------------------------

    def answer(
        self, method: str, raw_path: str, headers: Message, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        try:
            status, data = 200, self._route(method, raw_path, headers, body)
        except ApiError as error:
            status, data = error.status, error.body()
        except FeedInputError as error:
            status, data = 400, input_error(str(error)).body()
        except Exception as error:  # a bug in this server: say so loudly
            traceback.print_exc()
            status, data = 500, {"detail": f"test server bug: {error!r}", "status_code": 500}
        data["duration"] = f"{(time.perf_counter() - started) * 1000:.2f}ms"
        return status, data

    def _route(self, method: str, raw_path: str, headers: Message, body: bytes) -> dict[str, Any]:
        parts = urlsplit(raw_path)
        raw_segments = parts.path.split("/")
        if raw_segments[:3] != ["", "api", "v1.0"]:
            raise ApiError(404, 16, "DoesNotExistException", f"no endpoint {parts.path}")
        segments = [unquote(segment) for segment in raw_segments[3:]]
        if segments and segments[-1] == "":
            segments.pop()
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        app, claims = self._authenticate(query, headers)
        data = _json_body(body)
        match method, segments:
            case "POST", ["feed", "add_to_many"]:
                _allow(claims, "feed", "write")
                return self._add_to_many(app, data)
            case "POST", ["feed", group, feed_id]:
                feed = _feed(group, feed_id)
                _allow(claims, "feed", "write", feed)
                return self._add(app, feed, data)
            case "GET", ["feed", group, feed_id]:
                feed = _feed(group, feed_id)
                _allow(claims, "feed", "read", feed)
                return self._read(app, feed, query)
            case "POST", ["feed", group, feed_id, "follows"]:
                feed = _feed(group, feed_id)
                _allow(claims, "follower", "write", feed)
                return self._follow(app, feed, data)
            case "GET", ["feed", group, feed_id, ("follows" | "followers") as which]:
                feed = _feed(group, feed_id)
                _allow(claims, "follower", "read", feed)
                return self._follow_list(app, feed, query, which == "followers")
            case "DELETE", ["feed", group, feed_id, "follows", target]:
                feed = _feed(group, feed_id)
                _allow(claims, "follower", "delete", feed)
                return self._unfollow(app, feed, target, query)
            case "DELETE", ["feed", group, feed_id, foreign_id]:
                feed = _feed(group, feed_id)
                _allow(claims, "feed", "delete", feed)
                return self._remove(app, feed, foreign_id, query)
            case "POST", ["follow_many"]:
                _allow(claims, "follower", "write")
                return self._follow_many(app, data, query)
            case "POST", ["unfollow_many"]:
                _allow(claims, "follower", "delete")
                return self._unfollow_many(app, data)
            case "GET", ["activities"]:
                _allow(claims, "activities", "read")
                return self._activities(app, query)
            case "POST", ["activities"]:
                _allow(claims, "activities", "write")
                return self._update(app, data)
            case "POST", ["feed_targets", group, feed_id, "activity_to_targets"]:
                feed = _feed(group, feed_id)
                _allow(claims, "feed_targets", "write", feed)
                return self._add_targets(app, feed, data)
        raise ApiError(404, 16, "DoesNotExistException", f"no endpoint {method} {parts.path}")

    def _authenticate(
        self, query: Mapping[str, str], headers: Message
    ) -> tuple[App, dict[str, Any]]:
        key = query.get("api_key")
        if not key:
            raise ApiError(401, 2, "ApiKeyException", "api_key parameter missing")
        with self._lock:
            app = self._apps.get(key)
        if app is None:
            raise ApiError(401, 2, "ApiKeyException", f"api_key {key!r} not found")
        if headers.get("stream-auth-type") != "jwt":
            raise signature_error("stream-auth-type header must be jwt")
        token = headers.get("Authorization")
        if not token:
            raise signature_error("Authorization header missing")
        return app, _claims(token, app.secret)

    # -- writes ---------------------------------------------------------------------

    def _add(self, app: App, feed: FeedId, data: object) -> dict[str, Any]:
        if isinstance(data, dict) and "activities" in data:
            items = data["activities"]
            if not isinstance(items, list):
                raise input_error("activities must be a list")
            return {"activities": [self._add_one(app, feed, item) for item in items]}
        return self._add_one(app, feed, data)

    def _add_one(self, app: App, feed: FeedId, data: object) -> dict[str, Any]:
        activity = _activity(app, data, allow_to=True)
        aid = app.provider.add_activity(feed, activity)
        self._remember(app, aid, activity)
        with self._lock:
            app.added.add((feed, activity.foreign_id, activity.time))
        return {**_represent(aid, activity), "origin": None, "to": [str(t) for t in activity.to]}

    def _add_to_many(self, app: App, data: object) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("feeds"), list):
            raise input_error("add_to_many takes {'activity': {...}, 'feeds': [...]}")
        activity = _activity(app, data.get("activity"), allow_to=False)
        feeds = [_parse_feed(text) for text in data["feeds"]]
        aid = app.provider.add_to_many(activity, feeds)
        self._remember(app, aid, activity)
        return {}

    def _update(self, app: App, data: object) -> dict[str, Any]:
        """Replace activities' data by foreign_id + time, wherever they are."""
        if not isinstance(data, dict) or not isinstance(data.get("activities"), list):
            raise input_error("update takes {'activities': [...]}")
        activities = [_activity(app, item, allow_to=False) for item in data["activities"]]
        for activity in activities:
            with self._lock:
                known = (activity.foreign_id, activity.time) in app.by_foreign_id_time
            if not known:
                raise ApiError(
                    404,
                    16,
                    "DoesNotExistException",
                    f"no activity {activity.foreign_id!r} at that time",
                )
        for activity in activities:
            aid = app.provider.add_to_many(activity, [])  # replaces the data, adds to no feed
            self._remember(app, aid, activity)
        return {}

    def _remember(self, app: App, aid: str, activity: Activity) -> None:
        with self._lock:
            app.activities[aid] = _represent(aid, activity)
            app.by_foreign_id_time[(activity.foreign_id, activity.time)] = aid

    def _remove(
        self, app: App, feed: FeedId, foreign_id: str, query: Mapping[str, str]
    ) -> dict[str, Any]:
        if query.get("foreign_id") not in ("1", "true", "True"):
            raise input_error("this test server removes activities by foreign_id only")
        app.provider.remove_activity(feed, foreign_id)
        with self._lock:
            app.added -= {entry for entry in app.added if entry[:2] == (feed, foreign_id)}
        return {"removed": foreign_id}

    def _add_targets(self, app: App, feed: FeedId, data: object) -> dict[str, Any]:
        """``update_activity_to_targets`` with ``added_targets`` only."""
        if not isinstance(data, dict):
            raise input_error("activity_to_targets takes a JSON object")
        if "new_targets" in data or "removed_targets" in data:
            raise input_error("this test server only adds targets (added_targets)")
        added = data.get("added_targets")
        if not isinstance(added, list) or not added:
            raise input_error("added_targets must be a non-empty list")
        if len(added) > MAX_TO_TARGETS:
            raise input_error(f"added_targets may list at most {MAX_TO_TARGETS} feeds")
        targets = tuple(_parse_feed(text) for text in added)
        foreign_id, moment = _text(data.get("foreign_id")), _parse_time(data.get("time"))
        with self._lock:
            aid = app.by_foreign_id_time.get((foreign_id, moment))
            held = (feed, foreign_id, moment) in app.added
        if aid is None or not held:
            raise ApiError(
                404, 16, "DoesNotExistException", f"{feed} holds no activity {foreign_id!r}"
            )
        stored = app.activities[aid]
        activity = Activity(
            actor=stored["actor"],
            verb=stored["verb"],
            object=stored["object"],
            foreign_id=foreign_id,
            time=moment,
            to=targets,
            extra={
                name: value
                for name, value in stored.items()
                if name not in RESERVED_FIELDS | STANDARD_FIELDS and value is not None
            },
        )
        app.provider.add_activity(feed, activity)  # the same activity, with more targets
        return {"added": [str(target) for target in targets], "removed": [], "new": []}

    def _follow(self, app: App, source: FeedId, data: object) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise input_error("follow takes a JSON object")
        target = _parse_feed(data.get("target"))
        _check_feed_token(data.get("target_token"), target, app.secret)
        limit = _int_value(
            data.get("activity_copy_limit", DEFAULT_COPY_LIMIT), "activity_copy_limit"
        )
        app.provider.follow(source, target, limit)
        self._note_follow(app, source, target)
        return {}

    def _note_follow(self, app: App, source: FeedId, target: FeedId) -> None:
        with self._lock:
            app.follow_times.setdefault((source, target), _now())

    def _unfollow(
        self, app: App, source: FeedId, target_text: str, query: Mapping[str, str]
    ) -> dict[str, Any]:
        target = _parse_feed(target_text)
        keep_history = query.get("keep_history", "").lower() in ("true", "1")
        app.provider.unfollow(source, target, keep_history)
        with self._lock:
            app.follow_times.pop((source, target), None)
        return {}

    def _follow_many(self, app: App, data: object, query: Mapping[str, str]) -> dict[str, Any]:
        limit = _int_value(query.get("activity_copy_limit", DEFAULT_COPY_LIMIT), "copy limit")
        follows = [Follow(*_pair(item)) for item in _list(data)]
        app.provider.follow_many(follows, limit)
        for item in follows:
            self._note_follow(app, item.source, item.target)
        return {}

    def _unfollow_many(self, app: App, data: object) -> dict[str, Any]:
        items = _list(data)
        pairs = [(*_pair(item), bool(item.get("keep_history", False))) for item in items]
        for source, target, keep_history in pairs:
            app.provider.unfollow(source, target, keep_history)
            with self._lock:
                app.follow_times.pop((source, target), None)
        return {}

    # -- reads ----------------------------------------------------------------------

    def _read(self, app: App, feed: FeedId, query: Mapping[str, str]) -> dict[str, Any]:
        unsupported = sorted(set(query) - READ_PARAMS)
        if unsupported:
            raise input_error(f"this test server does not read by {', '.join(unsupported)}")
        limit = _int_value(query.get("limit", DEFAULT_READ_LIMIT), "limit")
        id_lt = query.get("id_lt")
        items = app.provider.read(feed, limit, id_lt)
        results = [_represent_stored(item) for item in items]
        next_page = ""
        if len(items) == limit:
            next_page = (
                f"/api/v1.0/feed/{quote(feed.group)}/{quote(feed.id)}/"
                f"?api_key={app.key}&id_lt={items[-1].id}&limit={limit}"
            )
        return {"results": results, "next": next_page}

    def _follow_list(
        self, app: App, feed: FeedId, query: Mapping[str, str], followers: bool
    ) -> dict[str, Any]:
        limit = _int_value(query.get("limit", 25), "limit")
        offset = _int_value(query.get("offset", 0), "offset")
        if limit > MAX_FOLLOW_PAGE:
            raise input_error(f"limit must be at most {MAX_FOLLOW_PAGE}")
        if query.get("filter"):
            raise input_error("this test server does not filter follow lists")
        if followers:
            edges = [(other, feed) for other in app.provider.followers(feed, limit, offset)]
        else:
            edges = [(feed, other) for other in app.provider.following(feed, limit, offset)]
        with self._lock:
            times = [app.follow_times.get(edge, _now()) for edge in edges]
        return {
            "results": [
                {
                    "feed_id": str(source),
                    "target_id": str(target),
                    "created_at": at,
                    "updated_at": at,
                }
                for (source, target), at in zip(edges, times, strict=True)
            ]
        }

    def _activities(self, app: App, query: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            if "ids" in query:
                ids = [aid for aid in query["ids"].split(",") if aid]
            elif "foreign_ids" in query and "timestamps" in query:
                foreign_ids = query["foreign_ids"].split(",")
                stamps = [_parse_time(text) for text in query["timestamps"].split(",")]
                if len(foreign_ids) != len(stamps):
                    raise input_error("foreign_ids and timestamps must pair up")
                ids = [
                    aid
                    for key in zip(foreign_ids, stamps, strict=True)
                    if (aid := app.by_foreign_id_time.get(key)) is not None
                ]
            else:
                raise input_error("give ids, or foreign_ids and timestamps")
            return {"results": [app.activities[aid] for aid in ids if aid in app.activities]}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: GetStreamServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as GetStream's servers do
    disable_nagle_algorithm = True  # headers and body go in two writes
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        owner = self.server.owner
        fault = owner._record(method, self.path, body)
        try:
            if fault is None:
                self._send(*owner.answer(method, self.path, self.headers, body))
                return
            applied = owner.answer(method, self.path, self.headers, body) if fault.apply else None
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                self._send_bytes(fault.status, fault.body, fault.content_type)
            elif applied is not None:
                self._send(*applied)
            else:
                self._send(*owner.answer(method, self.path, self.headers, body))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout)
        finally:
            with owner._lock:
                owner._in_flight -= 1

    def _send(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self._send_bytes(status, payload, "application/json; charset=utf-8")

    def _send_bytes(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows failures, not every request


# -- helpers -------------------------------------------------------------------


def _claims(token: str, secret: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.InvalidTokenError as error:
        raise signature_error(f"signature is invalid ({error})") from None
    if not isinstance(claims, dict):
        raise signature_error("token payload is not an object")
    return claims


def _allow(
    claims: Mapping[str, Any], resource: str, action: str, feed: FeedId | None = None
) -> None:
    feed_scope = claims.get("feed_id")
    allowed = (
        claims.get("resource") in (resource, "*")
        and claims.get("action") in (action, "*")
        and (feed_scope == "*" or (feed is not None and feed_scope == feed.group + feed.id))
    )
    if not allowed:
        where = f" on {feed}" if feed is not None else ""
        raise ApiError(
            403, 17, "NotAllowedException", f"token does not allow {resource} {action}{where}"
        )


def _check_feed_token(token: object, feed: FeedId, secret: str) -> None:
    if not isinstance(token, str) or not token:
        raise signature_error(f"no token for feed {feed}")
    _allow(_claims(token, secret), "feed", "read", feed)


def _feed(group: str, feed_id: str) -> FeedId:
    if not FEED_PART.fullmatch(group) or not FEED_PART.fullmatch(feed_id):
        raise input_error(f"invalid feed {group}:{feed_id}")
    return FeedId(group, feed_id)


def _parse_feed(text: object) -> FeedId:
    if not isinstance(text, str) or text.count(":") != 1:
        raise input_error(f"{text!r} is no feed id (group:id)")
    group, feed_id = text.split(":")
    return _feed(group, feed_id)


def _pair(item: object) -> tuple[FeedId, FeedId]:
    if not isinstance(item, dict):
        raise input_error("each follow is {'source': ..., 'target': ...}")
    return _parse_feed(item.get("source")), _parse_feed(item.get("target"))


def _list(data: object) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise input_error("expected a JSON list of objects")
    return data


def _json_body(body: bytes) -> object:
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise input_error("the body is not JSON") from None


def _int_value(value: object, name: str) -> int:
    if isinstance(value, bool):
        raise input_error(f"{name} must be a whole number")
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise input_error(f"{name} must be a whole number, not {value!r}") from None


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise input_error(f"time {value!r} is not a string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise input_error(f"time {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _activity(app: App, data: object, allow_to: bool) -> Activity:
    if not isinstance(data, dict):
        raise input_error("an activity is a JSON object")
    missing = [name for name in ("actor", "verb", "object") if data.get(name) in (None, "")]
    if missing:
        raise input_error(f"activity field(s) {', '.join(missing)} missing")
    if not data.get("foreign_id") or not data.get("time"):
        raise input_error("this test server needs foreign_id and time on every activity")
    targets: list[FeedId] = []
    if "to" in data:
        if not allow_to:
            raise input_error("to field targeting is not permitted via this endpoint")
        if not isinstance(data["to"], list):
            raise input_error("to must be a list")
        if len(data["to"]) > MAX_TO_TARGETS:
            raise input_error(f"to may list at most {MAX_TO_TARGETS} feeds")
        for entry in data["to"]:
            feed_text, _, token = str(entry).partition(" ")
            target = _parse_feed(feed_text)
            _check_feed_token(token, target, app.secret)
            targets.append(target)
    extra: dict[str, str] = {}
    for name, value in data.items():
        if name in STANDARD_FIELDS:
            continue
        if name in RESERVED_FIELDS:
            raise input_error(f"{name} is a reserved field name")
        if isinstance(value, dict | list):
            raise input_error("this test server stores only scalar custom fields")
        if value is not None:
            extra[name] = _text(value)
    return Activity(
        actor=_text(data["actor"]),
        verb=_text(data["verb"]),
        object=_text(data["object"]),
        foreign_id=_text(data["foreign_id"]),
        time=_parse_time(data["time"]),
        to=tuple(targets),
        extra=extra,
    )


def _represent(aid: str, activity: Activity | StoredActivity) -> dict[str, Any]:
    extra = dict(activity.extra)
    return {
        **extra,
        "id": aid,
        "actor": activity.actor,
        "verb": activity.verb,
        "object": activity.object,
        "foreign_id": activity.foreign_id,
        "time": activity.time.strftime(WIRE_TIME),
        "target": extra.get("target"),
    }


def _represent_stored(item: StoredActivity) -> dict[str, Any]:
    return _represent(item.id, item)


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).strftime(WIRE_TIME)

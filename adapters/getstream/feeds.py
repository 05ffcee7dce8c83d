"""``FeedProvider`` on GetStream's Feeds v2 API, through stream-python 5.x.

Each port operation is one stream-python call (batches: one per chunk):

- ``add_activity``: ``feed.add_activity``, ``to`` targets signed by the
  client (POST ``feed/{group}/{id}/``), at most 100 of them; further targets
  are added to the stored activity 100 a request by
  ``feed.update_activity_to_targets`` (POST
  ``feed_targets/{group}/{id}/activity_to_targets/``);
- ``remove_activity``: ``feed.remove_activity(foreign_id=...)``
  (DELETE ``feed/{group}/{id}/{foreign_id}/?foreign_id=1``);
- ``add_to_many``: ``client.add_to_many`` (POST ``feed/add_to_many/``), then
  ``client.get_activities`` by foreign id and time for the id it does not
  return; with no feeds, ``client.update_activities`` if the activity exists;
- ``follow`` / ``unfollow``: ``feed.follow(activity_copy_limit=...)`` /
  ``feed.unfollow(keep_history=...)`` (``feed/{group}/{id}/follows/``);
- ``follow_many`` / ``unfollow_many``: ``client.follow_many`` /
  ``client.unfollow_many``, 2,500 follows a request;
- ``read``: ``feed.get(limit=..., id_lt=...)`` (GET ``feed/{group}/{id}/``);
- ``followers`` / ``following``: ``feed.followers`` / ``feed.following``,
  500 a request.

Chirp's feed groups (``user``, ``timeline``, ``mentions``, ``notifications``,
``hashtag``) are mapped to the group names created in the app's dashboard;
any other group is used as is. Whatever GetStream would refuse for its
shape (feed ids, copy and read limits, cursors, reserved field names) is
refused with ``FeedInputError`` before any request is sent.

Timeouts, connection errors, 5xx answers and rate limiting (code 9) are
retried with exponential backoff, then raise ``FeedUnavailableError``. Every
write is idempotent (the same ``foreign_id`` + ``time`` is the same
activity), so retrying a write that did land before its answer was lost
changes nothing. Input errors (code 4 and the like) become ``FeedInputError``;
refused credentials or a missing feed group become
``GetStreamConfigurationError``, which no retry can fix.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import requests
import stream
from stream.exceptions import StreamApiException

from adapters.getstream.wire import (
    RESERVED_FIELDS,
    activity_data,
    activity_id_of,
    chunks,
    field_text,
    naive_utc,
    path_segment,
    results_of,
)
from application.feeds import (
    DEFAULT_COPY_LIMIT,
    DEFAULT_READ_LIMIT,
    MAX_ADD_TO_MANY,
    Activity,
    FeedId,
    FeedInputError,
    FeedProvider,
    FeedUnavailableError,
    Follow,
    StoredActivity,
    activity_id,
    activity_sort_key,
    check_copy_limit,
    check_page,
    check_read_limit,
    past_every_list,
)

logger = logging.getLogger(__name__)

CHIRP_GROUPS: Final = ("user", "timeline", "mentions", "notifications", "hashtag")
DEFAULT_FEED_GROUPS: Final[Mapping[str, str]] = MappingProxyType({g: g for g in CHIRP_GROUPS})
DEFAULT_TIMEOUT: Final = 6.0  # stream-python's and stream-django's
#: Follows sent per follow_many / unfollow_many request.
FOLLOW_BATCH_SIZE: Final = 2500
#: Followers or followed feeds asked for per request.
FOLLOW_PAGE_SIZE: Final = 500
#: ``to`` targets GetStream takes in one request (adding an activity, or
#: adding targets to a stored one).
TO_TARGETS_PER_REQUEST: Final = 100

# fullmatch, not ``^[\w-]+$``: ``$`` also matches before a trailing newline.
_FEED_PART = re.compile(r"[\w-]+")
_CREDENTIAL_CODES: Final = frozenset({2, 3, 7})  # ApiKey, Signature, SiteSuspended
_FEED_CONFIG_CODE: Final = 6
_NOT_ALLOWED_CODE: Final = 17
_RATE_LIMIT_CODE: Final = 9
_DOES_NOT_EXIST_CODE: Final = 16
_INPUT_CODES: Final = frozenset({4, 5, 8, 10, 11, 12, 13, 15, 16})
_TRANSIENT_STATUSES: Final = frozenset({408, 429})

T = TypeVar("T")


class GetStreamConfigurationError(FeedUnavailableError):
    """GetStream refused Chirp's credentials or configuration (unknown API
    key, wrong secret, a feed group missing from the dashboard). Retrying
    will not help; fixing the settings will."""


@dataclass(frozen=True)
class RetryPolicy:
    """How to retry a request that failed transiently.

    ``attempts`` counts the first try. The wait before retry ``n`` is
    ``base_delay * 2 ** (n - 1)``, capped at ``max_delay``; with ``jitter``,
    a random 50-100 % of that, so that workers rate-limited together do not
    all come back at the same instant.
    """

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"retry attempts must be at least 1, not {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must not be negative")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        wait = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return wait * random.uniform(0.5, 1.0) if self.jitter else wait


class GetStreamFeedProvider(FeedProvider):
    """Feeds stored in a GetStream app (Feeds v2), through a stream-python client.

    ``feed_groups`` maps Chirp's groups to the app's group names (missing
    ones keep their own name); the mapping must be one-to-one, and a mapped-to
    name cannot also be used directly. The client is shared by all threads.
    """

    def __init__(
        self,
        client: Any,
        feed_groups: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self.follow_batch_size = FOLLOW_BATCH_SIZE
        self.follow_page_size = FOLLOW_PAGE_SIZE
        self._sleep = sleep
        groups = {**DEFAULT_FEED_GROUPS, **(feed_groups or {})}
        for chirp_group, stream_group in groups.items():
            _check_part("group", chirp_group)
            _check_part("group", stream_group)
        by_stream_group: dict[str, str] = {}
        for chirp_group, stream_group in groups.items():
            if stream_group in by_stream_group:
                raise FeedInputError(
                    f"feed groups {by_stream_group[stream_group]!r} and {chirp_group!r} "
                    f"are both mapped to the GetStream group {stream_group!r}"
                )
            by_stream_group[stream_group] = chirp_group
        self.feed_groups: Mapping[str, str] = MappingProxyType(groups)
        self._chirp_groups: Mapping[str, str] = MappingProxyType(by_stream_group)

    @classmethod
    def from_settings(
        cls,
        api_key: str,
        api_secret: str,
        location: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        base_url: str | None = None,
        feed_groups: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> GetStreamFeedProvider:
        """A provider for the app with this key and secret, as stream-django
        configures it (``STREAM_API_KEY``, ``STREAM_API_SECRET``,
        ``STREAM_LOCATION``, ``STREAM_TIMEOUT``). ``base_url`` replaces
        GetStream's hosts (a proxy, a local test server); stream-python
        prefixes ``api.`` to its host name unless that name is ``localhost``."""
        if not api_key or not api_secret:
            raise ValueError(
                "STREAM_API_KEY and STREAM_API_SECRET must both be set; "
                "both are on the app's page of the GetStream dashboard"
            )
        if not timeout > 0:
            raise ValueError(f"STREAM_TIMEOUT must be a positive number of seconds, not {timeout}")
        if base_url:
            _check_base_url(base_url)
        client = stream.connect(
            api_key,
            api_secret,
            location=location or None,
            timeout=timeout,
            base_url=base_url or None,
        )
        return cls(client, feed_groups, retry)

    # -- writes ---------------------------------------------------------------

    def add_activity(self, feed: FeedId, activity: Activity) -> str:
        wire = self._wire(feed)
        targets = [
            str(self._wire(target)) for target in dict.fromkeys(activity.to) if target != feed
        ]
        data = activity_data(activity)
        if targets:
            data["to"] = targets[:TO_TARGETS_PER_REQUEST]
        handle = self._feed(wire)
        result = self._call(f"add_activity to {wire}", partial(handle.add_activity, data))
        # Past GetStream's limit, the other targets join the stored activity.
        # A retry after a failure here adds it again (the same activity) and
        # its targets again (already there): the same feeds either way.
        for more in chunks(targets[TO_TARGETS_PER_REQUEST:], TO_TARGETS_PER_REQUEST):
            self._call(
                f"update_activity_to_targets of {activity.foreign_id!r} on {wire}",
                partial(
                    handle.update_activity_to_targets,
                    activity.foreign_id,
                    data["time"],
                    added_targets=list(more),
                ),
            )
        return activity_id_of(result)

    def remove_activity(self, feed: FeedId, foreign_id: str) -> None:
        wire = self._wire(feed)
        if not foreign_id:  # no activity has an empty foreign id
            return
        remove = self._feed(wire).remove_activity
        self._call(
            f"remove_activity {foreign_id!r} from {wire}",
            partial(remove, foreign_id=path_segment(foreign_id)),
            missing_is_done=True,
        )

    def add_to_many(self, activity: Activity, feeds: Sequence[FeedId]) -> str:
        if len(feeds) > MAX_ADD_TO_MANY:
            raise FeedInputError(
                f"add_to_many takes at most {MAX_ADD_TO_MANY} feeds, not {len(feeds)}"
            )
        if "," in activity.foreign_id:
            raise FeedInputError(
                "add_to_many needs a foreign_id without ',' to look the activity up "
                f"afterwards, not {activity.foreign_id!r}"
            )
        wires = list(dict.fromkeys(self._wire(feed) for feed in feeds))
        data = activity_data(activity)  # without "to": this endpoint refuses it
        if wires:
            self._call(
                f"add_to_many ({len(wires)} feeds)",
                partial(self.client.add_to_many, data, [str(wire) for wire in wires]),
            )
        found = self._lookup(activity)
        if found is not None:
            if not wires:
                # Written to no feed, yet the same foreign_id + time replaces
                # the activity's data wherever it already is.
                self._call(
                    f"update_activities {activity.foreign_id!r}",
                    partial(self.client.update_activities, [data]),
                )
            return found
        if wires:
            raise FeedUnavailableError(
                f"GetStream did not find activity {activity.foreign_id!r} right after storing it"
            )
        # Written nowhere and stored nowhere: no id was issued; this one sorts
        # where the activity would.
        return activity_id(activity.foreign_id, activity.time)

    def _lookup(self, activity: Activity) -> str | None:
        """The id GetStream gave ``activity`` (add_to_many answers without it)."""
        found = self._call(
            f"get_activities {activity.foreign_id!r}",
            partial(
                self.client.get_activities,
                foreign_id_times=[(activity.foreign_id, activity.time)],
            ),
        )
        for item in results_of(found):
            if item.get("foreign_id") == activity.foreign_id and isinstance(item.get("id"), str):
                return str(item["id"])
        return None

    def follow(
        self, source: FeedId, target: FeedId, activity_copy_limit: int = DEFAULT_COPY_LIMIT
    ) -> None:
        check_copy_limit(activity_copy_limit)
        Follow(source, target)
        src, tgt = self._wire(source), self._wire(target)
        self._call(
            f"follow {src} -> {tgt}",
            partial(
                self._feed(src).follow, tgt.group, tgt.id, activity_copy_limit=activity_copy_limit
            ),
        )

    def unfollow(self, source: FeedId, target: FeedId, keep_history: bool = False) -> None:
        src, tgt = self._wire(source), self._wire(target)
        if source == target:  # never followed: a feed cannot follow itself
            return
        self._call(
            f"unfollow {src} -> {tgt}",
            partial(self._feed(src).unfollow, tgt.group, tgt.id, keep_history=keep_history),
            missing_is_done=True,
        )

    def follow_many(
        self, follows: Iterable[Follow], activity_copy_limit: int = DEFAULT_COPY_LIMIT
    ) -> None:
        check_copy_limit(activity_copy_limit)
        pairs = [self._pair(item) for item in follows]
        for chunk in chunks(pairs, self.follow_batch_size):
            self._call(
                f"follow_many ({len(chunk)} follows)",
                partial(self.client.follow_many, chunk, activity_copy_limit=activity_copy_limit),
            )

    def unfollow_many(self, follows: Iterable[Follow], keep_history: bool = False) -> None:
        pairs = [{**self._pair(item), "keep_history": keep_history} for item in follows]
        for chunk in chunks(pairs, self.follow_batch_size):
            self._call(
                f"unfollow_many ({len(chunk)} follows)",
                partial(self.client.unfollow_many, chunk),
                missing_is_done=True,
            )

    # -- reads ----------------------------------------------------------------

    def read(
        self, feed: FeedId, limit: int = DEFAULT_READ_LIMIT, id_lt: str | None = None
    ) -> list[StoredActivity]:
        check_read_limit(limit)
        params: dict[str, Any] = {"limit": limit}
        if id_lt is not None:
            activity_sort_key(id_lt)  # refuses a string that is no activity id
            params["id_lt"] = id_lt
        wire = self._wire(feed)
        result = self._call(f"read {wire}", partial(self._feed(wire).get, **params))
        return [self._stored(item) for item in results_of(result)]

    def followers(self, feed: FeedId, limit: int = 25, offset: int = 0) -> list[FeedId]:
        return self._follow_list(feed, limit, offset, followers=True)

    def following(self, feed: FeedId, limit: int = 25, offset: int = 0) -> list[FeedId]:
        return self._follow_list(feed, limit, offset, followers=False)

    # -- internals ------------------------------------------------------------

    def _wire(self, feed: FeedId) -> FeedId:
        """``feed`` as GetStream names it, after checking GetStream accepts it."""
        group = self.feed_groups.get(feed.group)
        if group is None:
            owner = self._chirp_groups.get(feed.group)
            if owner is not None:
                raise FeedInputError(
                    f"feed group {feed.group!r} holds Chirp's {owner!r} feeds; "
                    f"write {owner}:{feed.id} instead"
                )
            group = feed.group
        _check_part("group", group)
        _check_part("id", feed.id)
        return FeedId(group, feed.id)

    def _unwire(self, text: object) -> FeedId | None:
        """A ``group:id`` from GetStream as Chirp names it; None if malformed."""
        if not isinstance(text, str):
            return None
        group, sep, feed_id = text.partition(":")
        if not sep or not _FEED_PART.fullmatch(group) or not _FEED_PART.fullmatch(feed_id):
            return None
        return FeedId(self._chirp_groups.get(group, group), feed_id)

    def _feed(self, wire: FeedId) -> Any:
        return self.client.feed(wire.group, wire.id)

    def _pair(self, item: Follow) -> dict[str, Any]:
        return {"source": str(self._wire(item.source)), "target": str(self._wire(item.target))}

    def _follow_list(self, feed: FeedId, limit: int, offset: int, followers: bool) -> list[FeedId]:
        check_page(limit, offset)
        if past_every_list(offset):
            return []
        wire = self._wire(feed)
        key = "feed_id" if followers else "target_id"
        found: list[FeedId] = []
        while len(found) < limit:
            page = min(self.follow_page_size, limit - len(found))
            handle = self._feed(wire)
            method = handle.followers if followers else handle.following
            what = f"{'followers' if followers else 'following'} of {wire}"
            rows = results_of(
                self._call(what, partial(method, offset=offset + len(found), limit=page))
            )
            for row in rows:
                other = self._unwire(row.get(key))
                if other is None:
                    raise FeedUnavailableError(f"GetStream listed a malformed feed in {what}")
                found.append(other)
            if len(rows) < page:
                break
        return found

    def _stored(self, item: Mapping[str, Any]) -> StoredActivity:
        aid = item.get("id")
        if not isinstance(aid, str) or not aid:
            raise FeedUnavailableError("GetStream returned an activity without an id")
        return StoredActivity(
            id=aid,
            actor=field_text(item.get("actor")),
            verb=field_text(item.get("verb")),
            object=field_text(item.get("object")),
            foreign_id=field_text(item.get("foreign_id")),
            time=naive_utc(item.get("time"), aid),
            extra={
                str(name): field_text(value)
                for name, value in item.items()
                if name not in RESERVED_FIELDS and value is not None
            },
        )

    def _call(
        self, what: str, request: Callable[[], Any], missing_is_done: bool = False
    ) -> dict[str, Any]:
        """Send ``request``, retrying transient failures with backoff. With
        ``missing_is_done`` (removals), "does not exist" is success: a retry
        of a removal whose answer was lost finds nothing left to remove."""
        attempts = self.retry.attempts
        problem = ""
        last_error: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                result = request()
            except StreamApiException as error:
                if missing_is_done and getattr(error, "code", None) == _DOES_NOT_EXIST_CODE:
                    return {}
                problem, last_error = _refusal(error, what), error
            except (
                requests.Timeout,
                requests.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
            ) as error:
                problem, last_error = f"{type(error).__name__}: {error}", error
            except requests.RequestException as error:
                raise FeedUnavailableError(
                    f"could not send {what} to GetStream: {error}"
                ) from error
            except (KeyError, AttributeError) as error:
                # stream-python fails this way on a JSON body that is no
                # GetStream error, such as a proxy's 502 page.
                problem, last_error = f"unreadable answer ({type(error).__name__}: {error})", error
            else:
                if isinstance(result, dict):
                    return result
                problem, last_error = f"unexpected answer of type {type(result).__name__}", None
            if attempt < attempts:
                delay = self.retry.delay(attempt)
                logger.warning(
                    "GetStream %s failed (%s); retry %d of %d in %.3f s",
                    what,
                    problem,
                    attempt,
                    attempts - 1,
                    delay,
                )
                self._sleep(delay)
        raise FeedUnavailableError(
            f"GetStream {what} failed {attempts} time(s), the last with {problem}; "
            "the write is safe to retry later"
        ) from last_error


def _refusal(error: StreamApiException, what: str) -> str:
    """Describe a transient GetStream error, or raise the port's error for a
    permanent one."""
    status = getattr(error, "status_code", None)
    code = getattr(error, "code", None)
    detail = getattr(error, "detail", None) or str(error)
    summary = f"{type(error).__name__} (code {code}, HTTP {status}): {detail}"
    if code == _RATE_LIMIT_CODE or status in _TRANSIENT_STATUSES:
        return summary
    if isinstance(status, int) and status >= 500:
        return summary
    if code in _CREDENTIAL_CODES:
        raise GetStreamConfigurationError(
            f"GetStream refused Chirp's credentials for {what}: {summary}. Check "
            "STREAM_API_KEY and STREAM_API_SECRET: the key and secret of one app, "
            "from its dashboard."
        ) from error
    if code == _FEED_CONFIG_CODE:
        raise GetStreamConfigurationError(
            f"GetStream refused {what}: {summary}. Create the feed group in the app's "
            "dashboard (flat) or map Chirp's group to an existing one (STREAM_FEED_GROUP_*)."
        ) from error
    if code == _NOT_ALLOWED_CODE:
        raise GetStreamConfigurationError(
            f"GetStream does not allow {what} for this app: {summary}"
        ) from error
    if code in _INPUT_CODES:
        raise FeedInputError(f"GetStream refused {what}: {summary}") from error
    raise FeedUnavailableError(f"GetStream could not {what}: {summary}") from error


def _check_part(what: str, value: object) -> None:
    if not isinstance(value, str) or not _FEED_PART.fullmatch(value):
        raise FeedInputError(
            f"GetStream refuses feed {what} {value!r}: only letters, digits, _ and - are allowed"
        )


def _check_base_url(base_url: str) -> None:
    host = urlsplit(base_url).hostname
    if not host:
        raise ValueError(f"STREAM_BASE_URL {base_url!r} has no host name")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    raise ValueError(
        f"STREAM_BASE_URL {base_url!r} names its host by address; stream-python "
        "would send requests to api.<address>. Use a host name (localhost for this machine)."
    )

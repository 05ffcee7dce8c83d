"""The GetStream adapter through stream-python, HTTP and a local GetStream server.

The whole ``FeedProviderContract`` runs against it; then faults injected at
the server show that retries lose and duplicate nothing, that refusals become
the port's errors with clear messages, and that what GetStream would refuse
is refused before any request is sent.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import requests
from eventsourcing.popo import POPOTrackingRecorder

from adapters.getstream import (
    GetStreamConfigurationError,
    GetStreamFeedProvider,
    RetryPolicy,
)
from adapters.inmemory.catalog import InMemoryCatalog
from application.commands import ChirpApplication
from application.feed_names import hashtag_feed, timeline_feed, user_feed
from application.feeds import (
    Activity,
    FeedId,
    FeedInputError,
    FeedProvider,
    FeedUnavailableError,
    Follow,
)
from application.projectors import FeedProjector
from application.service import Chirp
from chirp.bootstrap import build_chirp, event_store_env
from chirp.settings import Settings
from tests.contract.feed_provider_contract import FeedProviderContract
from tests.getstream_server import App, Fault, GetStreamServer

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.004)
BASE_DELAY = 0.001
T0 = datetime(2025, 3, 1, 12, 0, 0)
T0_UTC = T0.replace(tzinfo=UTC)
SECRET = "s" * 32  # PyJWT warns about shorter HMAC keys

AUTHOR = FeedId("user", "alice")
READER = FeedId("timeline", "bob")
TAG = FeedId("hashtag", "python")


@pytest.fixture(scope="module")
def server() -> Iterator[GetStreamServer]:
    with GetStreamServer() as running:
        yield running


@pytest.fixture
def app(server: GetStreamServer) -> Iterator[App]:
    server.clear_faults()
    server.clear_requests()
    yield server.create_app()
    server.clear_faults()


def make_provider(
    server: GetStreamServer,
    app: App,
    *,
    attempts: int = 3,
    timeout: float = 5.0,
    sleeps: list[float] | None = None,
    feed_groups: dict[str, str] | None = None,
) -> GetStreamFeedProvider:
    retry = RetryPolicy(attempts=attempts, base_delay=BASE_DELAY, max_delay=0.004, jitter=False)
    sleep: Callable[[float], None] = sleeps.append if sleeps is not None else (lambda _: None)
    return GetStreamFeedProvider(server.client(app, timeout=timeout), feed_groups, retry, sleep)


def post(n: int = 0, *, to: tuple[FeedId, ...] = (), **extra: str) -> Activity:
    return Activity(
        actor="alice",
        verb="tweet",
        object=f"tweet:{n}",
        foreign_id=f"tweet:{n}",
        time=T0 + timedelta(seconds=n),
        to=to,
        extra=extra,
    )


def ids(provider: FeedProvider, feed: FeedId) -> list[str]:
    return [item.id for item in provider.read(feed, limit=100)]


# -- the contract ----------------------------------------------------------------


class TestGetStreamFeedProvider(FeedProviderContract):
    property_max_examples = 25

    @pytest.fixture(autouse=True)
    def _connect(self, server: GetStreamServer) -> None:
        self.client = server.client(server.create_app())

    def make_provider(self) -> FeedProvider:
        return GetStreamFeedProvider(self.client, retry=FAST_RETRY)


# -- retries -----------------------------------------------------------------------


def test_a_5xx_after_the_write_landed_is_retried_and_the_activity_shows_once(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app)
    provider.follow(READER, AUTHOR)
    server.inject(Fault.server_error(503, apply=True), path="/feed/user/alice", method="POST")
    aid = provider.add_activity(AUTHOR, post(to=(TAG,)))
    assert len(server.requests_to("/feed/user/alice", "POST")) == 2
    assert server.pending_faults == 0
    for feed in (AUTHOR, READER, TAG):
        assert ids(provider, feed) == [aid], feed


def test_a_rate_limit_is_waited_out_then_the_write_succeeds(
    server: GetStreamServer, app: App
) -> None:
    sleeps: list[float] = []
    provider = make_provider(server, app, sleeps=sleeps)
    server.inject(Fault.rate_limited(), times=2, method="POST")
    aid = provider.add_activity(AUTHOR, post())
    assert sleeps == [BASE_DELAY, 2 * BASE_DELAY]
    assert len(server.requests_to("/feed/user/alice", "POST")) == 3
    assert ids(provider, AUTHOR) == [aid]


def test_a_timeout_after_the_write_landed_is_retried_and_the_activity_shows_once(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app, timeout=0.5)
    provider.follow(READER, AUTHOR)
    server.inject(Fault.slow(1.0, apply=True), path="/feed/user/alice", method="POST")
    aid = provider.add_activity(AUTHOR, post())
    assert len(server.requests_to("/feed/user/alice", "POST")) == 2
    assert ids(provider, AUTHOR) == [aid]
    assert ids(provider, READER) == [aid]


def test_a_timed_out_write_landing_after_its_retry_changes_nothing(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app, timeout=0.3)
    provider.follow(READER, AUTHOR)
    server.inject(Fault.slow(0.8, apply=False), path="/feed/user/alice", method="POST")
    aid = provider.add_activity(AUTHOR, post(extra="x"))
    assert app.provider.read(AUTHOR) != []  # the retry landed...
    server.wait_idle()  # ...and only now the first attempt
    assert len(server.requests_to("/feed/user/alice", "POST")) == 2
    assert ids(provider, AUTHOR) == [aid]
    assert ids(provider, READER) == [aid]


def test_a_timed_out_follow_is_retried_without_duplicate_copies(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app, timeout=0.5)
    written = [provider.add_activity(AUTHOR, post(n)) for n in range(3)]
    server.inject(Fault.slow(1.0, apply=True), path="/follows", method="POST")
    provider.follow(READER, AUTHOR)
    assert len(server.requests_to("/follows", "POST")) == 2
    assert ids(provider, READER) == written[::-1]
    assert provider.followers(AUTHOR) == [READER]


def test_a_5xx_after_a_removal_landed_is_retried_harmlessly(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app)
    provider.follow(READER, AUTHOR)
    activity = post(to=(TAG,))
    provider.add_activity(AUTHOR, activity)
    server.inject(Fault.server_error(500, apply=True), method="DELETE")
    provider.remove_activity(AUTHOR, activity.foreign_id)
    assert len(server.requests_to("/feed/user/alice/tweet:0", "DELETE")) == 2
    for feed in (AUTHOR, READER, TAG):
        assert ids(provider, feed) == []


def test_a_removal_retried_after_its_answer_was_lost_may_find_nothing_to_remove(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app)
    provider.follow(READER, AUTHOR)
    activity = post()
    provider.add_activity(AUTHOR, activity)
    gone = Fault.error(404, 16, "DoesNotExistException", "nothing to remove")
    server.inject(Fault.server_error(503, apply=True), method="DELETE")
    server.inject(gone, method="DELETE")
    provider.remove_activity(AUTHOR, activity.foreign_id)
    server.inject(Fault.server_error(503, apply=True), method="DELETE")
    server.inject(gone, method="DELETE")
    provider.unfollow(READER, AUTHOR)
    assert server.pending_faults == 0
    assert ids(provider, AUTHOR) == ids(provider, READER) == []
    assert provider.following(READER) == []
    server.inject(gone)
    with pytest.raises(FeedInputError, match="DoesNotExistException"):
        provider.read(AUTHOR)  # elsewhere, "does not exist" is an error


@pytest.mark.parametrize(
    "fault",
    [
        Fault.bad_gateway(),
        Fault.bad_gateway(b'{"message": "bad gateway"}'),
        Fault.server_error(504),
    ],
    ids=["html", "json-without-detail", "gateway-timeout"],
)
def test_answers_that_are_no_getstream_json_are_retried(
    server: GetStreamServer, app: App, fault: Fault
) -> None:
    provider = make_provider(server, app)
    aid = provider.add_activity(AUTHOR, post())
    server.inject(fault, times=2, method="GET")
    assert ids(provider, AUTHOR) == [aid]
    assert server.pending_faults == 0


def test_exhausting_the_retries_raises_feed_unavailable_and_stores_nothing(
    server: GetStreamServer, app: App
) -> None:
    sleeps: list[float] = []
    provider = make_provider(server, app, attempts=4, sleeps=sleeps)
    server.inject(Fault.server_error(503), times=4)
    with pytest.raises(FeedUnavailableError, match="failed 4 time") as raised:
        provider.add_activity(AUTHOR, post())
    assert not isinstance(raised.value, FeedInputError | GetStreamConfigurationError)
    assert sleeps == [BASE_DELAY, 2 * BASE_DELAY, 4 * BASE_DELAY]
    assert len(server.requests) == 4
    assert ids(provider, AUTHOR) == []


def test_an_unreachable_server_is_feed_unavailable(app: App) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = GetStreamFeedProvider.from_settings(
        app.key, app.secret, base_url=f"http://localhost:{port}", timeout=1.0, retry=FAST_RETRY
    )
    provider.client.session.trust_env = False
    with pytest.raises(FeedUnavailableError, match="ConnectionError"):
        provider.read(AUTHOR)


def test_input_errors_are_not_retried(server: GetStreamServer, app: App) -> None:
    provider = make_provider(server, app)
    server.inject(Fault.error(400, 4, "InputException", "verb is too long"))
    with pytest.raises(FeedInputError, match=r"InputException.*verb is too long"):
        provider.add_activity(AUTHOR, post())
    assert len(server.requests) == 1


def test_a_missing_feed_group_is_a_configuration_error(server: GetStreamServer, app: App) -> None:
    provider = make_provider(server, app)
    server.inject(Fault.error(400, 6, "FeedConfigException", "feed group timeline missing"))
    with pytest.raises(GetStreamConfigurationError, match="dashboard") as raised:
        provider.follow(READER, AUTHOR)
    assert not isinstance(raised.value, FeedInputError)
    assert len(server.requests) == 1


def test_the_retry_policy_doubles_the_wait_up_to_a_cap() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.1, max_delay=0.3, jitter=False)
    assert [policy.delay(n) for n in range(1, 6)] == [0.1, 0.2, 0.3, 0.3, 0.3]
    jittered = RetryPolicy(base_delay=0.1, max_delay=10)
    for n in range(1, 5):
        assert 0.05 * 2 ** (n - 1) <= jittered.delay(n) <= 0.1 * 2 ** (n - 1)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_exhausted_retries_fail_the_projection_and_a_later_catch_up_converges(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app, attempts=2)
    commands = ChirpApplication(env=event_store_env(Settings(database_url="memory:")))
    chirp = Chirp(commands, InMemoryCatalog(), FeedProjector(provider, POPOTrackingRecorder(), 100))
    try:
        chirp.register("alice")
        chirp.register("bob")
        chirp.follow("bob", "alice")
        # Each attempt lands, then its answer is lost: the worst case.
        server.inject(Fault.server_error(503, apply=True), times=2, path="/feed/user/alice")
        chirp.post("alice", "hello #python", T0_UTC)  # stored
        chirp.sync()  # its projection fails, quietly
        assert server.pending_faults == 0
        last_event = commands.recorder.max_notification_id() or 0
        assert chirp.feed_follower.position < last_event
        server.inject(Fault.server_error(503, apply=True), times=2, path="/feed/user/alice")
        with pytest.raises(FeedUnavailableError, match="failed 2 time"):
            chirp.feed_follower.catch_up()  # the background follower's retry, failing again
        assert chirp.feed_follower.position < last_event
        chirp.sync()
        assert chirp.feed_follower.position == last_event
        post_id = chirp.post("alice", "again", T0_UTC + timedelta(seconds=1))
        chirp.sync()
        for feed in (user_feed("alice"), timeline_feed("bob"), timeline_feed("alice")):
            assert len(ids(provider, feed)) == 2, feed
        assert len(ids(provider, hashtag_feed("python"))) == 1
        home = chirp.queries.home_timeline("bob")
        assert len(home.items) == 2
        assert home.items[0].post_id == post_id
    finally:
        chirp.close()


# -- batches and paging --------------------------------------------------------------


def test_follow_many_is_sent_in_chunks_and_a_failed_chunk_is_retried(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app)
    provider.follow_batch_size = 2
    authors = [FeedId("user", f"a{n}") for n in range(5)]
    written = [provider.add_activity(author, post(n)) for n, author in enumerate(authors)]
    server.inject(Fault.server_error(503, apply=True), path="/follow_many")
    provider.follow_many([Follow(READER, author) for author in authors], activity_copy_limit=1)
    assert len(server.requests_to("/follow_many")) == 4  # three chunks, one retried
    assert server.requests_to("/follow_many")[0].query["activity_copy_limit"] == "1"
    assert provider.following(READER) == authors[::-1]
    assert ids(provider, READER) == written[::-1]
    provider.unfollow_many([Follow(READER, author) for author in authors[:3]])
    assert len(server.requests_to("/unfollow_many")) == 2
    assert provider.following(READER) == authors[:2:-1]
    assert ids(provider, READER) == written[:2:-1]


def test_followers_are_read_page_by_page(server: GetStreamServer, app: App) -> None:
    provider = make_provider(server, app)
    provider.follow_page_size = 2
    fans = [FeedId("timeline", f"fan{n}") for n in range(5)]
    provider.follow_many([Follow(fan, AUTHOR) for fan in fans])
    before = len(server.requests)
    assert provider.followers(AUTHOR, limit=5) == fans[::-1]
    assert len(server.requests) - before == 3
    assert provider.followers(AUTHOR, limit=3, offset=1) == fans[::-1][1:4]
    assert provider.followers(AUTHOR, limit=10, offset=4) == [fans[0]]


def test_add_to_many_returns_the_id_getstream_gave(server: GetStreamServer, app: App) -> None:
    provider = make_provider(server, app)
    activity = post(extra="1")
    aid = provider.add_to_many(activity, [AUTHOR, TAG])
    assert ids(provider, AUTHOR) == ids(provider, TAG) == [aid]
    assert [r.path for r in server.requests[:2]] == [
        "/api/v1.0/feed/add_to_many/",
        "/api/v1.0/activities/",
    ]


def test_add_to_many_with_no_feeds_replaces_the_data_of_a_stored_activity(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app)
    aid = provider.add_activity(AUTHOR, post(extra="1"))
    assert provider.add_to_many(post(extra="2"), []) == aid
    assert dict(provider.read(AUTHOR)[0].extra) == {"extra": "2"}
    provider.add_to_many(post(7), [])
    assert ids(provider, AUTHOR) == [aid]


# -- credentials and settings ----------------------------------------------------------


def test_a_wrong_secret_is_a_clear_configuration_error_without_retries(
    server: GetStreamServer, app: App
) -> None:
    client = server.client(app, api_secret="not-the-secret-" + "x" * 32)
    provider = GetStreamFeedProvider(client, retry=FAST_RETRY)
    with pytest.raises(GetStreamConfigurationError, match="STREAM_API_SECRET") as raised:
        provider.read(AUTHOR)
    assert "SignatureException" in str(raised.value)
    assert not isinstance(raised.value, FeedInputError)
    assert len(server.requests) == 1


def test_an_unknown_api_key_is_a_clear_configuration_error(
    server: GetStreamServer, app: App
) -> None:
    provider = GetStreamFeedProvider(server.client(app, api_key="nokey"), retry=FAST_RETRY)
    with pytest.raises(GetStreamConfigurationError, match=r"ApiKeyException.*STREAM_API_KEY"):
        provider.add_activity(AUTHOR, post())
    assert len(server.requests) == 1


def test_from_settings_configures_the_client_like_stream_django(
    server: GetStreamServer, app: App
) -> None:
    provider = GetStreamFeedProvider.from_settings(
        app.key,
        app.secret,
        timeout=2.5,
        base_url=server.base_url,
        feed_groups={"timeline": "flat"},
    )
    assert provider.client.timeout == 2.5
    assert provider.feed_groups["timeline"] == "flat"
    provider.client.session.trust_env = False
    provider.follow(READER, AUTHOR, activity_copy_limit=0)
    assert app.provider.following(FeedId("flat", "bob")) == [AUTHOR]


def test_the_composition_root_runs_chirp_on_getstream(server: GetStreamServer, app: App) -> None:
    settings = Settings(
        database_url="memory:",
        feed_provider="getstream",
        stream_api_key=app.key,
        stream_api_secret=app.secret,
        stream_base_url=server.base_url,
        stream_feed_groups={"timeline": "flat"},
    )
    chirp = build_chirp(settings)
    try:
        assert isinstance(chirp.provider, GetStreamFeedProvider)
        chirp.provider.client.session.trust_env = False
        chirp.register("alice")
        chirp.register("bob")
        chirp.follow("bob", "alice")
        post_id = chirp.post("alice", "hi @bob #python", T0_UTC)
        assert [item.post_id for item in chirp.queries.home_timeline("bob").items] == [post_id]
        assert [item.post_id for item in chirp.queries.hashtag("python").items] == [post_id]
        following = app.provider.following(FeedId("flat", "bob"))
        assert following == [user_feed("alice"), user_feed("bob")]
    finally:
        chirp.close()


def test_from_settings_passes_the_location_on(app: App) -> None:
    provider = GetStreamFeedProvider.from_settings("k", SECRET, location="us-east")
    assert provider.client.get_full_url("api", "feed/") == (
        "https://us-east-api.stream-io-api.com/api/v1.0/feed/"
    )
    assert provider.client.timeout == 6.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"api_key": "", "api_secret": SECRET}, "STREAM_API_KEY"),
        ({"api_key": "k", "api_secret": ""}, "STREAM_API_SECRET"),
        ({"api_key": "k", "api_secret": SECRET, "timeout": 0}, "positive"),
        ({"api_key": "k", "api_secret": SECRET, "base_url": "http://127.0.0.1:80"}, "localhost"),
        ({"api_key": "k", "api_secret": SECRET, "base_url": "http://[::1]:80"}, "localhost"),
        (
            {"api_key": "k", "api_secret": SECRET, "feed_groups": {"user": "a b"}},
            "GetStream refuses feed group",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_message(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GetStreamFeedProvider.from_settings(**settings)


# -- refused before any request ----------------------------------------------------------


def _unchecked_feed(group: str, feed_id: str) -> FeedId:
    """A FeedId that skipped validation, as a buggy caller might make one."""
    return tuple.__new__(FeedId, (group, feed_id))


BAD_FEEDS = {
    # FeedId lets this one through today: in ^[\w-]+$, $ also matches before a final newline.
    "trailing-newline": _unchecked_feed("user", "alice\n"),
    "space": _unchecked_feed("user", "a b"),
    "colon": _unchecked_feed("user", "a:b"),
    "empty-group": _unchecked_feed("", "a"),
}

OPERATIONS: dict[str, Callable[[FeedProvider, FeedId], object]] = {
    "add_activity": lambda p, bad: p.add_activity(bad, post()),
    "add_activity-to": lambda p, bad: p.add_activity(AUTHOR, post(to=(TAG, bad))),
    "remove_activity": lambda p, bad: p.remove_activity(bad, "tweet:0"),
    "add_to_many": lambda p, bad: p.add_to_many(post(), [AUTHOR, bad]),
    "follow-source": lambda p, bad: p.follow(bad, AUTHOR),
    "follow-target": lambda p, bad: p.follow(READER, bad),
    "unfollow": lambda p, bad: p.unfollow(READER, bad),
    "follow_many": lambda p, bad: p.follow_many([Follow(READER, AUTHOR), Follow(READER, bad)]),
    "unfollow_many": lambda p, bad: p.unfollow_many([Follow(READER, AUTHOR), Follow(bad, TAG)]),
    "read": lambda p, bad: p.read(bad),
    "followers": lambda p, bad: p.followers(bad),
    "following": lambda p, bad: p.following(bad),
}


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
@pytest.mark.parametrize("bad", BAD_FEEDS.values(), ids=BAD_FEEDS.keys())
def test_feed_ids_getstream_would_refuse_are_refused_before_any_request(
    server: GetStreamServer,
    app: App,
    operation: Callable[[FeedProvider, FeedId], object],
    bad: FeedId,
) -> None:
    provider = make_provider(server, app)
    with pytest.raises(FeedInputError, match="GetStream refuses feed"):
        operation(provider, bad)
    assert server.requests == []


@pytest.mark.parametrize(
    "operation",
    [
        lambda p: p.read(AUTHOR, limit=101),
        lambda p: p.read(AUTHOR, id_lt="not-an-id"),
        lambda p: p.follow(READER, AUTHOR, activity_copy_limit=1001),
        lambda p: p.follow_many([Follow(READER, AUTHOR)], activity_copy_limit=-1),
        lambda p: p.followers(AUTHOR, limit=0),
        lambda p: p.following(AUTHOR, offset=-1),
        lambda p: p.add_to_many(post(), [FeedId("user", str(n)) for n in range(5001)]),
        lambda p: p.add_activity(AUTHOR, post(id="x")),
        lambda p: p.add_activity(AUTHOR, post(score="1")),
        lambda p: p.add_to_many(post(to=(TAG,), origin="user:x"), [AUTHOR]),
        lambda p: p.add_activity(AUTHOR, Activity("a", "v", "o", "f", T0, extra={"to": "x"})),
        lambda p: p.add_activity(FeedId("flat", "bob"), post()),
        lambda p: p.add_to_many(Activity("a", "v", "o", foreign_id="a,b", time=T0), [AUTHOR]),
    ],
    ids=[
        "read-limit",
        "read-cursor",
        "copy-limit",
        "follow_many-copy-limit",
        "followers-limit",
        "following-offset",
        "add_to_many-5001",
        "extra-id",
        "extra-score",
        "extra-origin",
        "extra-to",
        "mapped-group-used-directly",
        "comma-in-foreign-id",
    ],
)
def test_other_input_getstream_would_refuse_is_refused_before_any_request(
    server: GetStreamServer, app: App, operation: Callable[[FeedProvider], object]
) -> None:
    provider = make_provider(server, app, feed_groups={"timeline": "flat"})
    with pytest.raises(FeedInputError):
        operation(provider)
    assert server.requests == []


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"timeline": "flat feed"}, "GetStream refuses feed group 'flat feed'"),
        ({"timeline": "flat\n"}, "GetStream refuses feed group"),
        ({"timeline": "user"}, "both mapped to the GetStream group 'user'"),
        ({"hashtag": "tag", "mentions": "tag"}, "both mapped"),
    ],
)
def test_feed_group_mappings_are_checked(
    server: GetStreamServer, app: App, groups: dict[str, str], message: str
) -> None:
    with pytest.raises(FeedInputError, match=message):
        make_provider(server, app, feed_groups=groups)


# -- the wire ------------------------------------------------------------------------------


def test_feed_groups_are_mapped_both_ways(server: GetStreamServer, app: App) -> None:
    provider = make_provider(server, app, feed_groups={"timeline": "flat", "hashtag": "tag"})
    tag_reader = FeedId("timeline", "carol")
    provider.follow(READER, AUTHOR)
    provider.follow(tag_reader, TAG)
    aid = provider.add_activity(AUTHOR, post(to=(TAG,)))
    stored = app.provider  # the server's store, in GetStream's names
    assert [a.id for a in stored.read(FeedId("flat", "bob"))] == [aid]
    assert [a.id for a in stored.read(FeedId("tag", "python"))] == [aid]
    assert stored.read(READER) == [] and stored.read(TAG) == []
    assert [a.id for a in provider.read(READER)] == [aid]
    assert [a.id for a in provider.read(tag_reader)] == [aid]
    assert provider.followers(AUTHOR) == [READER]
    assert provider.following(tag_reader) == [TAG]


def test_strings_that_look_like_dates_read_back_unchanged(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app)
    extra = {"at": "2024-01-02T03:04:05.000006", "day": "2024-01-02", "n": "3", "empty": ""}
    activity = Activity(
        actor="2024-05-06",
        verb="tweet",
        object="2024-05-06T07:08:09.101112",
        foreign_id="1999-12-31",
        time=T0,
        extra=extra,
    )
    provider.add_activity(AUTHOR, activity)
    item = provider.read(AUTHOR)[0]
    assert (item.actor, item.object, item.foreign_id) == (
        "2024-05-06",
        "2024-05-06T07:08:09.101112",
        "1999-12-31",
    )
    assert dict(item.extra) == extra
    provider.remove_activity(AUTHOR, "1999-12-31")
    assert provider.read(AUTHOR) == []


def test_to_targets_travel_signed_without_the_feed_itself_or_repeats(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app)
    provider.add_activity(AUTHOR, post(to=(TAG, AUTHOR, TAG, READER)))
    provider.add_to_many(post(1, to=(TAG,)), [AUTHOR])
    added, to_many = (
        server.requests_to("/feed/user/alice/", "POST"),
        server.requests_to("/add_to_many/"),
    )
    assert isinstance(added[0].body, dict) and isinstance(to_many[0].body, dict)
    targets = [entry.split(" ") for entry in added[0].body["to"]]
    assert [target for target, _ in targets] == ["hashtag:python", "timeline:bob"]
    for _, token in targets:
        assert jwt.decode(token, app.secret, algorithms=["HS256"])["resource"] == "feed"
    assert "to" not in to_many[0].body["activity"]
    assert to_many[0].body["feeds"] == ["user:alice"]


def test_targets_past_100_are_added_to_the_stored_activity_100_a_request(
    server: GetStreamServer, app: App
) -> None:
    provider = make_provider(server, app)
    targets = tuple(FeedId("mentions", f"user{n}") for n in range(250))
    aid = provider.add_activity(AUTHOR, post(to=targets))
    added = server.requests_to("/feed/user/alice/", "POST")
    updates = server.requests_to("/feed_targets/user/alice/activity_to_targets/", "POST")
    assert isinstance(added[0].body, dict)
    assert len(added[0].body["to"]) == 100
    sent = [body["added_targets"] for body in (u.body for u in updates) if isinstance(body, dict)]
    assert [len(chunk) for chunk in sent] == [100, 50]
    assert sent[0][0] == "mentions:user100" and sent[1][-1] == "mentions:user249"
    for target in targets:
        assert ids(provider, target) == [aid]


def test_an_add_that_failed_past_its_first_100_targets_converges_when_projected_again(
    server: GetStreamServer, app: App
) -> None:
    """The projector retries an event whose feed writes failed part-way: the
    activity and its first targets are there already, the rest arrive."""
    provider = make_provider(server, app, attempts=1)
    targets = tuple(FeedId("mentions", f"user{n}") for n in range(150))
    server.inject(Fault.server_error(503), path="/activity_to_targets/", method="POST")
    with pytest.raises(FeedUnavailableError):
        provider.add_activity(AUTHOR, post(to=targets))
    assert ids(provider, targets[0]) != [] and ids(provider, targets[-1]) == []
    aid = provider.add_activity(AUTHOR, post(to=targets))
    for target in (AUTHOR, *targets):
        assert ids(provider, target) == [aid]
    provider.remove_activity(AUTHOR, post().foreign_id)
    assert all(ids(provider, target) == [] for target in (AUTHOR, *targets))


@pytest.mark.parametrize(
    "foreign_id",
    ["post/1", "what?x=1#frag", "100%", "two words", "café:日本", ".", "..", "a//b"],
)
def test_any_foreign_id_can_be_removed(server: GetStreamServer, app: App, foreign_id: str) -> None:
    provider = make_provider(server, app)
    provider.follow(READER, AUTHOR)
    kept = provider.add_activity(AUTHOR, post(1))
    provider.add_activity(AUTHOR, Activity("alice", "tweet", "x", foreign_id, T0))
    provider.remove_activity(AUTHOR, foreign_id)
    assert ids(provider, AUTHOR) == ids(provider, READER) == [kept]
    assert server.requests_to(f"/feed/user/alice/{foreign_id}/", "DELETE")


# -- the test server's own checks -------------------------------------------------------------


def _token(secret: str, resource: str = "feed", action: str = "*", feed_id: str = "*") -> str:
    return jwt.encode({"resource": resource, "action": action, "feed_id": feed_id}, secret)


def _get(server: GetStreamServer, path: str, headers: dict[str, str], key: str) -> Any:
    url = f"{server.base_url}/api/v1.0/{path}"
    session = requests.Session()
    session.trust_env = False
    answer = session.get(url, params={"api_key": key}, headers=headers, timeout=5)
    return answer.status_code, answer.json()


def test_the_server_checks_key_token_and_scope(server: GetStreamServer, app: App) -> None:
    jwt_auth = {"stream-auth-type": "jwt"}
    good = {**jwt_auth, "Authorization": _token(app.secret)}
    assert _get(server, "feed/user/alice/", good, app.key)[0] == 200
    status, body = _get(server, "feed/user/alice/", good, "nokey")
    assert (status, body["code"], body["exception"]) == (401, 2, "ApiKeyException")
    status, body = _get(server, "feed/user/alice/", jwt_auth, app.key)
    assert (status, body["code"]) == (401, 3)
    status, body = _get(server, "feed/user/alice/", {"Authorization": _token(app.secret)}, app.key)
    assert (status, body["code"]) == (401, 3)
    bad = {**jwt_auth, "Authorization": _token("another-secret-" + "y" * 32)}
    status, body = _get(server, "feed/user/alice/", bad, app.key)
    assert (status, body["code"], body["exception"]) == (401, 3, "SignatureException")
    other_feed = {**jwt_auth, "Authorization": _token(app.secret, feed_id="userbob")}
    status, body = _get(server, "feed/user/alice/", other_feed, app.key)
    assert (status, body["code"]) == (403, 17)
    own_feed = {**jwt_auth, "Authorization": _token(app.secret, "feed", "read", "useralice")}
    assert _get(server, "feed/user/alice/", own_feed, app.key)[0] == 200


def test_the_server_refuses_to_targets_signed_with_another_secret(
    server: GetStreamServer, app: App
) -> None:
    impostor = server.client(app, api_secret="another-secret-" + "z" * 32)
    client = server.client(app)
    feed = client.feed("user", "alice")
    forged = impostor.feed("hashtag", "python").token
    activity = {"actor": "a", "verb": "v", "object": "o", "foreign_id": "f", "time": "2025-01-01"}
    with pytest.raises(Exception, match="signature is invalid") as raised:
        client.post(
            feed.feed_url,
            signature=feed.create_scope_token("feed", "write"),
            data={**activity, "to": [f"hashtag:python {forged}"]},
        )
    assert type(raised.value).__name__ == "SignatureException"
    assert app.provider.read(FeedId("user", "alice")) == []

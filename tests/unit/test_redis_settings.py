"""The Redis settings: ``REDIS_CLUSTER`` (a flag) and ``REDIS_BROKER_URL``, and
what a bad value of either says (a ConfigurationError naming it, which the
``chirp`` command prints as one line)."""

from __future__ import annotations

import pytest

from chirp.cli import main
from chirp.settings import DEFAULT_REDIS_URL, ConfigurationError, SentinelParams, Settings

CLUSTER_URL = "redis://10.0.0.5:7000"


def test_redis_cluster_is_off_by_default_and_the_broker_is_at_redis_url() -> None:
    settings = Settings.from_env({})
    assert settings.redis_cluster is False
    assert settings.broker_url == settings.redis_url == DEFAULT_REDIS_URL
    assert Settings.from_env({"REDIS_URL": CLUSTER_URL}).broker_url == CLUSTER_URL


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        (" on ", True),
        ("false", False),
        ("0", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_redis_cluster_reads_true_or_false(text: str, expected: bool) -> None:
    environ = {"REDIS_CLUSTER": text, "REDIS_URL": CLUSTER_URL}
    assert Settings.from_env(environ).redis_cluster is expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"REDIS_CLUSTER": "cluster"}, "REDIS_CLUSTER 'cluster' must be true or false"),
        ({"REDIS_CLUSTER": "true", "REDIS_URL": f"{CLUSTER_URL}/3"}, "database 0 only"),
        ({"REDIS_CLUSTER": "true", "REDIS_URL": "unix:///run/redis.sock"}, "redis:// or rediss://"),
        (
            {"REDIS_CLUSTER": "true", "CHIRP_PROJECTION": "dramatiq", "FEED_PROVIDER": "redis"},
            "needs REDIS_BROKER_URL",
        ),
    ],
)
def test_bad_redis_settings_say_which(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(environ)


def test_a_cluster_with_feed_workers_takes_the_broker_from_redis_broker_url() -> None:
    settings = Settings.from_env(
        {
            "FEED_PROVIDER": "redis",
            "CHIRP_PROJECTION": "dramatiq",
            "REDIS_CLUSTER": "true",
            "REDIS_URL": f"{CLUSTER_URL}/0",
            "REDIS_BROKER_URL": "redis://10.0.0.9:6379/0",
        }
    )
    assert settings.redis_cluster
    assert settings.redis_url == f"{CLUSTER_URL}/0"
    assert settings.broker_url == "redis://10.0.0.9:6379/0"


def test_the_chirp_command_prints_a_bad_setting_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_CLUSTER", "maybe")
    assert main(["replay", "--quiet"]) == 2
    assert capsys.readouterr().err == "chirp: REDIS_CLUSTER 'maybe' must be true or false\n"


# -- a replica set through Redis Sentinel: redis+sentinel:// URLs ----------------


def test_a_sentinel_url_names_the_sentinels_the_primary_and_how_to_reach_it() -> None:
    params = SentinelParams.from_url(
        "redis+sentinel://chirp:s%40cret@10.0.0.1:26379,[::1]:26380,sentinel-c:5000/feeds/2"
    )
    assert params == SentinelParams(
        sentinels=[("10.0.0.1", 26379), ("::1", 26380), ("sentinel-c", 5000)],
        master="feeds",
        db=2,
        username="chirp",
        password="s@cret",
    )
    plain = SentinelParams.from_url("redis+sentinel://127.0.0.1:26379/mymaster")
    assert (plain.db, plain.username, plain.password) == (0, None, None)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://127.0.0.1:26379", "mymaster"),  # no master name
        ("redis+sentinel:///mymaster", "mymaster"),  # no sentinel
        ("redis+sentinel://127.0.0.1/mymaster", "is not host:port"),
        ("redis+sentinel://127.0.0.1:99999/mymaster", "is not host:port"),
        ("redis+sentinel://127.0.0.1:26379/mymaster/x", "database 'x' is not a number"),
        ("redis+sentinel://127.0.0.1:26379/mymaster/0/extra", "mymaster"),
    ],
)
def test_a_bad_sentinel_url_is_a_configuration_error(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        Settings.from_env({"REDIS_URL": url})
    with pytest.raises(ConfigurationError, match=says):
        Settings.from_env({"REDIS_BROKER_URL": url})


def test_a_sentinel_url_is_not_a_cluster() -> None:
    with pytest.raises(ConfigurationError, match="REDIS_CLUSTER"):
        Settings.from_env(
            {"REDIS_URL": "redis+sentinel://127.0.0.1:26379/mymaster", "REDIS_CLUSTER": "true"}
        )

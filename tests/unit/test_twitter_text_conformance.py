"""twitter-text's cross-language conformance cases, run against domain.text.

The cases are read at test time from ``shared/conformance/twitter-text/`` beside
the project root (never copied in). Without that folder the cases skip, except
under CI or ``CHIRP_REQUIRE_SERVICES=1``, where its absence fails the run.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from twitter_text import parse_tweet

from domain.text import (
    extract_hashtags,
    extract_mentions,
    extract_reply_username,
    extract_urls,
    is_valid_hashtag,
    is_valid_length,
    is_valid_username,
    weighted_length,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = PROJECT_ROOT.parent / "shared" / "conformance" / "twitter-text"

Case = dict[str, Any]


@cache
def _load(file_name: str) -> dict[str, list[Case]] | None:
    path = CONFORMANCE_DIR / file_name
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as stream:
        tests: dict[str, list[Case]] = yaml.safe_load(stream)["tests"]
    return tests


def _cases(file_name: str, *sections: str) -> list[Any]:
    """One pytest param per case of the sections; a single placeholder (None) when
    the data is missing, so the test itself can skip or fail."""
    tests = _load(file_name)
    if tests is None:
        return [pytest.param(None, id=f"{file_name}-missing")]
    params = []
    for section in sections:
        if section not in tests:
            # A section dropped upstream must not silently pass with zero cases.
            params.append(pytest.param({"missing_section": section}, id=f"{section}-missing"))
            continue
        params += [
            pytest.param(case, id=f"{section}: {case['description']}") for case in tests[section]
        ]
    return params


def _require(case: Case | None) -> Case:
    if case is None:
        message = f"twitter-text conformance data not found in {CONFORMANCE_DIR}"
        if os.environ.get("CI") == "true" or os.environ.get("CHIRP_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    if "missing_section" in case:
        pytest.fail(f"section {case['missing_section']!r} not found in the conformance data")
    return case


@pytest.mark.parametrize("case", _cases("extract.yml", "mentions"))
def test_mentions(case: Case | None) -> None:
    case = _require(case)
    assert [m.text for m in extract_mentions(case["text"])] == case["expected"]


@pytest.mark.parametrize("case", _cases("extract.yml", "mentions_with_indices"))
def test_mentions_with_indices(case: Case | None) -> None:
    case = _require(case)
    got = [
        {"screen_name": m.text, "indices": [m.start, m.end]} for m in extract_mentions(case["text"])
    ]
    assert got == case["expected"]


@pytest.mark.parametrize("case", _cases("extract.yml", "replies"))
def test_replies(case: Case | None) -> None:
    case = _require(case)
    assert extract_reply_username(case["text"]) == case["expected"]


@pytest.mark.parametrize("case", _cases("extract.yml", "hashtags", "hashtags_from_astral"))
def test_hashtags(case: Case | None) -> None:
    case = _require(case)
    assert [h.text for h in extract_hashtags(case["text"])] == case["expected"]


@pytest.mark.parametrize("case", _cases("extract.yml", "hashtags_with_indices"))
def test_hashtags_with_indices(case: Case | None) -> None:
    case = _require(case)
    got = [{"hashtag": h.text, "indices": [h.start, h.end]} for h in extract_hashtags(case["text"])]
    assert got == case["expected"]


@pytest.mark.parametrize("case", _cases("extract.yml", "urls"))
def test_urls(case: Case | None) -> None:
    case = _require(case)
    assert [u.text for u in extract_urls(case["text"])] == case["expected"]


@pytest.mark.parametrize("case", _cases("extract.yml", "urls_with_indices"))
def test_urls_with_indices(case: Case | None) -> None:
    case = _require(case)
    got = [{"url": u.text, "indices": [u.start, u.end]} for u in extract_urls(case["text"])]
    assert got == case["expected"]


@pytest.mark.parametrize("case", _cases("validate.yml", "usernames"))
def test_valid_usernames(case: Case | None) -> None:
    case = _require(case)
    assert is_valid_username(case["text"].removeprefix("@")) is case["expected"]


@pytest.mark.parametrize("case", _cases("validate.yml", "hashtags"))
def test_valid_hashtags(case: Case | None) -> None:
    case = _require(case)
    assert is_valid_hashtag(case["text"].removeprefix("#")) is case["expected"]


@pytest.mark.parametrize(
    "case", _cases("validate.yml", "WeightedTweetsWithDiscountedEmojiCounterTest")
)
def test_weighted_length(case: Case | None) -> None:
    case = _require(case)
    expected = case["expected"]
    assert weighted_length(case["text"]) == expected["weightedLength"]
    assert is_valid_length(case["text"]) is expected["valid"]
    # The remaining fields (permillage, ranges) come straight from the library.
    parsed = parse_tweet(case["text"]).asdict()
    assert {key: parsed[key] for key in expected} == expected

"""The text rules through Django's test client: the compose counter and the post
form agree on every text, hashtag pages fold case as Unicode does, and bodies
or query strings that are not UTF-8 are refused rather than stored as mojibake."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from application.service import Chirp


def html(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined,no-any-return]


def events(chirp: Chirp) -> int:
    return chirp.commands.recorder.max_notification_id() or 0


COUNTED_TEXTS = [
    "hello",
    "a\ufeffb",
    "a\ufffeb",
    "a\uffffb",
    "a\x00b",
    "ring\x07ring",
    "esc\x1b[31m",
    "del\x7f",
    "\u200b\u200c\u200d",
    "\u3164",
    "\u2800 \u180e",
    "\u2066\u202ahttp://example.com/\u202c\u2069",
    "x" * 281,
    "   ",
]


@pytest.mark.parametrize("text", COUNTED_TEXTS)
def test_compose_count_and_posting_agree(
    logged_in: Callable[[str], Client], chirp: Chirp, text: str
) -> None:
    client = logged_in("alice")
    count = client.get("/compose/count", {"text": text}).json()
    before = events(chirp)
    response = client.post("/post", {"text": text})
    stored = events(chirp) == before + 1
    assert count["valid"] is stored
    # Posted or refused, the answer is a redirect home (a refused post's
    # draft and reason are shown there).
    assert response.status_code == 302 and response["Location"] == "/"
    if stored:
        assert count["message"] is None
    else:
        assert count["message"]
        if "\x00" not in text:  # Django's form refuses NUL itself, in its own words
            assert count["message"] in html(client.get("/"))


def test_compose_count_explains_an_invisible_post(logged_in: Callable[[str], Client]) -> None:
    data = logged_in("alice").get("/compose/count", {"text": "\u200b"}).json()
    assert data["valid"] is False
    assert data["message"].startswith("a post needs some visible text")


def test_hashtag_pages_fold_case_as_unicode_does(
    client: Client, person: Callable[..., User], chirp: Chirp
) -> None:
    person("alice")
    chirp.post("alice", "Grüße aus der #Straße")
    for tag in ["Straße", "STRASSE", "STRAẞE", "strasse"]:
        page = html(client.get(f"/tags/{tag}"))
        assert "Grüße aus der" in page, tag
    assert 'href="/tags/strasse"' in html(client.get("/@alice"))


def test_invalid_utf8_in_a_form_body_is_refused(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    before = events(chirp)
    form = "application/x-www-form-urlencoded"
    for body in [b"text=caf%E9", b"text=caf\xe9", b"text=%C3", b"text=ok&te%FFxt=x"]:
        response = client.post("/post", body, content_type=form)
        assert response.status_code == 400, body
        assert "not valid UTF-8" in html(response)
    assert events(chirp) == before
    assert client.post("/post", b"text=caf%C3%A9", content_type=form).status_code == 302
    assert events(chirp) == before + 1
    assert "café" in html(client.get("/"))


def test_invalid_utf8_in_a_multipart_body_is_refused(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    before = events(chirp)
    body = (
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="text"\r\n\r\n'
        b"caf\xe9\r\n"
        b"--BOUNDARY--\r\n"
    )
    response = client.post("/post", body, content_type="multipart/form-data; boundary=BOUNDARY")
    assert response.status_code == 400
    assert "not valid UTF-8" in html(response)
    assert events(chirp) == before


@pytest.mark.parametrize("query", ["text=%FF", "text=caf%E9", "text=\xe9", "te%C3xt=1"])
def test_invalid_utf8_in_a_query_string_is_refused(
    client: Client, chirp: Chirp, query: str
) -> None:
    # The WSGI server hands the raw query string over as Latin-1 text (PEP 3333).
    response = client.get("/compose/count", QUERY_STRING=query)
    assert response.status_code == 400
    assert "not valid UTF-8" in html(response)


def test_valid_utf8_query_strings_still_work(logged_in: Callable[[str], Client]) -> None:
    client = logged_in("alice")
    response = client.get("/compose/count", QUERY_STRING="text=caf%C3%A9+%F0%9F%90%A6")
    assert response.status_code == 200
    assert response.json()["weighted_length"] == 7


def test_sign_up_refuses_a_spoofing_display_name_beside_the_field(
    client: Client, chirp: Chirp
) -> None:
    form = {
        "username": "mallory",
        "display_name": "Ali\u200bce Liddell",
        "password": "a-long-test-password-42",
        "password_again": "a-long-test-password-42",
    }
    response = client.post("/signup", form)
    assert response.status_code == 400
    page = html(response)
    assert "invisible characters such as U+200B (ZERO WIDTH SPACE)" in page
    assert not User.objects.filter(username="mallory").exists()
    assert events(chirp) == 0


def test_settings_refuse_direction_controls_in_names_and_control_characters_in_bios(
    logged_in: Callable[[str], Client], chirp: Chirp
) -> None:
    client = logged_in("alice")
    before = events(chirp)
    response = client.post("/settings", {"display_name": "Evil\u202e", "bio": ""})
    assert response.status_code == 400
    assert "direction controls such as U+202E (RIGHT-TO-LEFT OVERRIDE)" in html(response)
    response = client.post("/settings", {"display_name": "Alice", "bio": "bell\x07"})
    assert response.status_code == 400
    assert "a bio cannot contain control characters such as U+0007" in html(response)
    assert events(chirp) == before

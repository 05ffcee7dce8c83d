"""Sign-up, log-in and log-out; sign-up never leaves a half-registered user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import ClassVar

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from application.service import Chirp
from domain.errors import UsernameTaken, UserNotFound
from web import services
from web.models import PendingRegistration

PASSWORD = "a-long-test-password-42"


def sign_up_form(username: str, **extra: str) -> dict[str, str]:
    return {
        "username": username,
        "display_name": extra.get("display_name", ""),
        "password": extra.get("password", PASSWORD),
        "password_again": extra.get("password_again", PASSWORD),
    }


def registered_in_log(chirp: Chirp, username: str) -> bool:
    try:
        chirp.commands.get_user(username)
    except UserNotFound:
        return False
    return True


def test_sign_up_logs_in_and_registers_in_both_stores(client: Client, chirp: Chirp) -> None:
    response = client.post("/signup", sign_up_form("Alice", display_name="Alice A."))
    assert response.status_code == 302
    assert User.objects.filter(username="Alice").exists()
    assert not PendingRegistration.objects.exists()
    assert chirp.queries.user("alice").display_name == "Alice A."
    assert "@Alice" in client.get("/").content.decode()


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("al ice", "may only contain letters, digits and _"),
        ("bob!", "may only contain letters, digits and _"),
        ("x" * 16, "at most 15 characters"),
    ],
)
def test_invalid_usernames_are_form_errors(
    client: Client, chirp: Chirp, username: str, message: str
) -> None:
    response = client.post("/signup", sign_up_form(username))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not User.objects.exists()
    assert chirp.commands.recorder.max_notification_id() is None


def test_a_taken_username_in_any_case_is_a_form_error(
    client: Client, chirp: Chirp, person: Callable[..., User]
) -> None:
    person("alice")
    response = client.post("/signup", sign_up_form("ALICE"))
    assert response.status_code == 400
    assert "already taken" in response.content.decode()
    assert User.objects.count() == 1


def test_password_mismatch_and_weak_password(client: Client, chirp: Chirp) -> None:
    response = client.post("/signup", sign_up_form("alice", password_again="different-pass-99"))
    assert "The two passwords differ" in response.content.decode()
    response = client.post("/signup", sign_up_form("alice", password="123", password_again="123"))
    assert response.status_code == 400
    assert not User.objects.exists()


def test_an_event_store_failure_leaves_no_account(
    client: Client, chirp: Chirp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_register(username: str, display_name: str = "") -> object:
        raise OSError("disk full")

    monkeypatch.setattr(chirp, "register", broken_register)
    with pytest.raises(OSError, match="disk full"):
        services.sign_up(chirp, "alice", PASSWORD)
    assert not User.objects.exists()
    assert not PendingRegistration.objects.exists()
    assert not registered_in_log(chirp, "alice")


def test_a_projection_failure_after_the_event_is_stored_keeps_the_account(
    client: Client, chirp: Chirp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The event is stored, then projecting it fails (a busy catalog): the
    # command succeeded, so the sign-up did too.
    def register_then_fail(username: str, display_name: str = "") -> object:
        chirp.commands.register(username, display_name)
        raise RuntimeError("the catalog is locked")

    monkeypatch.setattr(chirp, "register", register_then_fail)
    account = services.sign_up(chirp, "alice", PASSWORD)
    assert account.get_username() == "alice"
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]
    assert not PendingRegistration.objects.exists()
    assert client.login(username="alice", password=PASSWORD)


def test_a_failure_after_another_name_in_other_case_was_stored_leaves_no_account(
    client: Client, chirp: Chirp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Alice" is in the event log but has no account here (another web
    # database, say); "alice" fails for another reason: not alice's event.
    chirp.commands.register("Alice")

    def broken_register(username: str, display_name: str = "") -> object:
        raise OSError("disk full")

    monkeypatch.setattr(chirp, "register", broken_register)
    with pytest.raises(OSError, match="disk full"):
        services.sign_up(chirp, "alice", PASSWORD)
    assert not User.objects.exists()
    assert not PendingRegistration.objects.exists()


class RecordingHasher(MD5PasswordHasher):
    """Notes whether each password was hashed inside a database transaction."""

    algorithm = "recording_md5"
    in_transaction: ClassVar[list[bool]] = []

    def encode(self, password: str, salt: str) -> str:
        self.in_transaction.append(connection.in_atomic_block)
        return super().encode(password, salt)


def test_sign_up_hashes_the_password_outside_any_transaction(
    transactional_db: None, chirp: Chirp
) -> None:
    # Hashing is slow on purpose; inside a write transaction it would hold
    # SQLite's write lock for as long, and queue every other writer.
    RecordingHasher.in_transaction.clear()
    with override_settings(PASSWORD_HASHERS=[f"{__name__}.RecordingHasher"]):
        services.sign_up(chirp, "alice", PASSWORD)
        assert User.objects.get(username="alice").check_password(PASSWORD)
    assert RecordingHasher.in_transaction  # it did hash: on sign-up, then to check
    assert not any(RecordingHasher.in_transaction)


def test_the_same_name_saved_meanwhile_by_another_writer_is_taken(
    client: Client, chirp: Chirp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL two sign-ups can both find the name free; the second to
    # save meets the unique constraint: "taken", not a 500.
    User.objects.create_user(username="alice", password="someone-else-99")
    real_filter = User.objects.filter

    def seen_before_the_other_writer_saved(*args: object, **kwargs: object) -> object:
        if "username__iexact" in kwargs:
            return User.objects.none()
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(User.objects, "filter", seen_before_the_other_writer_saved)
    with pytest.raises(UsernameTaken):
        services.sign_up(chirp, "alice", PASSWORD)
    monkeypatch.undo()
    assert User.objects.count() == 1
    assert not PendingRegistration.objects.exists()
    assert not registered_in_log(chirp, "alice")


def test_a_crash_after_the_event_is_completed_at_log_in(
    client: Client, chirp: Chirp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Django fails to remove the pending mark after the event was saved.
    real_filter = PendingRegistration.objects.filter

    def failing_filter(*args: object, **kwargs: object) -> object:
        if "user" in kwargs:
            raise RuntimeError("database went away")
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(PendingRegistration.objects, "filter", failing_filter)
    with pytest.raises(RuntimeError):
        services.sign_up(chirp, "alice", PASSWORD)
    monkeypatch.undo()
    assert PendingRegistration.objects.count() == 1
    assert registered_in_log(chirp, "alice")

    assert client.login(username="alice", password=PASSWORD)
    assert not PendingRegistration.objects.exists()


def test_a_crash_before_the_event_refuses_log_in_and_frees_the_name_later(
    client: Client, chirp: Chirp
) -> None:
    account = User.objects.create_user(username="alice", password=PASSWORD)
    pending = PendingRegistration.objects.create(user=account)
    assert not client.login(username="alice", password=PASSWORD)

    # Too recent to be abandoned: the name stays reserved.
    response = client.post("/signup", sign_up_form("alice"))
    assert "already taken" in response.content.decode()

    PendingRegistration.objects.filter(pk=pending.pk).update(
        created_at=timezone.now() - services.ABANDONED_AFTER - timedelta(seconds=1)
    )
    response = client.post("/signup", sign_up_form("alice"))
    assert response.status_code == 302
    assert registered_in_log(chirp, "alice")
    assert User.objects.filter(username="alice").count() == 1


def test_log_in_is_case_insensitive_and_log_out_needs_post(
    client: Client, person: Callable[..., User]
) -> None:
    person("Alice")
    response = client.post("/login", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302
    assert "Create an account" in client.get("/").content.decode()


def test_a_wrong_password_is_a_form_error(client: Client, person: Callable[..., User]) -> None:
    person("alice")
    response = client.post("/login", {"username": "alice", "password": "wrong-password"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()

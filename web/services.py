"""Web services: the operations that span Django's stores and Chirp's application.

Views call these and the application's commands; nothing else in ``web`` holds
rules. Sign-up is the one operation writing to two stores (Django's user
table and the event log); it is ordered so that no failure leaves a
half-registered user:

1. create the Django account, marked pending, in one transaction;
2. save ``UserRegistered`` in the event log (the authority on usernames);
   on any failure, delete the account again;
3. remove the pending mark.

A crash between 2 and 3 leaves a pending account whose event exists: the
first log-in completes it. A crash between 1 and 2 leaves a pending account
without an event: log-in refuses it, and a later sign-up for the same name
removes it once it is older than ``ABANDONED_AFTER``.

Follow, unfollow and delete are idempotent here, for people: a button pressed
twice, or in a tab opened before, succeeds when the state asked for is already
there. The domain keeps refusing the repeat (``AlreadyFollowing`` and so on);
this layer turns that refusal into the success it means for the person.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta
from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from application.service import Chirp
from domain.errors import (
    AlreadyFollowing,
    NotFollowing,
    TweetAlreadyDeleted,
    UsernameTaken,
    UserNotFound,
)
from domain.user import check_username
from web.models import PendingRegistration

ABANDONED_AFTER = timedelta(minutes=10)


def sign_up(chirp: Chirp, username: str, password: str, display_name: str = "") -> User:
    check_username(username)
    accounts = get_user_model()
    _remove_abandoned_account(chirp, username)
    with transaction.atomic():
        if accounts.objects.filter(username__iexact=username).exists():
            raise UsernameTaken(f"username {username!r} is already taken")
        account = accounts.objects.create_user(username=username, password=password)
        PendingRegistration.objects.create(user=account)
    try:
        chirp.register(username, display_name)
    except BaseException:
        account.delete()
        raise
    PendingRegistration.objects.filter(user=account).delete()
    return account


def is_registered(chirp: Chirp, username: str) -> bool:
    try:
        chirp.commands.get_user(username)
    except UserNotFound:
        return False
    return True


def complete_pending_registration(chirp: Chirp, account: User) -> bool:
    """Whether ``account`` may log in: it has no pending mark, or its event is
    stored (then the mark is removed now)."""
    pending = PendingRegistration.objects.filter(user=account)
    if not pending.exists():
        return True
    if is_registered(chirp, account.get_username()):
        pending.delete()
        return True
    return False


def follow(chirp: Chirp, follower: str, followee: str) -> None:
    """``follower`` follows ``followee`` afterwards; already following is that state."""
    with suppress(AlreadyFollowing):
        chirp.follow(follower, followee)


def unfollow(chirp: Chirp, follower: str, followee: str) -> None:
    """``follower`` does not follow ``followee`` afterwards; not following is
    that state, but only for a user who exists (else ``UserNotFound``)."""
    try:
        chirp.unfollow(follower, followee)
    except NotFollowing:
        chirp.commands.get_user(followee)


def delete_post(chirp: Chirp, post_id: UUID, by: str) -> None:
    """The post is deleted afterwards. A post already deleted is that state for
    its author; the domain checks authorship first, so anyone else still gets
    ``NotTheAuthor``, and an unknown post ``TweetNotFound``."""
    with suppress(TweetAlreadyDeleted):
        chirp.delete_post(post_id, by)


def _remove_abandoned_account(chirp: Chirp, username: str) -> None:
    cutoff = timezone.now() - ABANDONED_AFTER
    stale = PendingRegistration.objects.filter(
        user__username__iexact=username, created_at__lt=cutoff
    ).select_related("user")
    for pending in stale:
        if not is_registered(chirp, pending.user.get_username()):
            pending.user.delete()

"""Web services: the operations that span Django's stores and Chirp's application.

Views call these and the application's commands; nothing else in ``web`` holds
rules. Sign-up is the one operation writing to two stores (Django's user
table and the event log); it is ordered so that no failure leaves a
half-registered user:

1. hash the password (slow on purpose), before any write transaction;
2. create the Django account, marked pending, in one transaction;
3. save ``UserRegistered`` in the event log (the authority on usernames);
   if that fails and the event is not stored, delete the account again;
4. remove the pending mark.

The command succeeded if and only if its event is stored: when saving
succeeds but projecting it fails, the sign-up has succeeded (the projection
catches up later). A crash between 3 and 4, or a store too busy to tell
whether the event is stored, leaves a pending account: the first log-in
completes it if its event exists. A crash between 2 and 3 leaves a pending
account without an event: log-in refuses it, and a later sign-up for the same
name removes it once it is older than ``ABANDONED_AFTER``.

Follow, unfollow and delete are idempotent here, for people: a button pressed
twice, or in a tab opened before, succeeds when the state asked for is already
there. The domain keeps refusing the repeat (``AlreadyFollowing`` and so on);
this layer turns that refusal into the success it means for the person.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import timedelta
from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from application.service import Chirp
from domain.errors import (
    AlreadyFollowing,
    DomainError,
    NotFollowing,
    TweetAlreadyDeleted,
    UsernameTaken,
    UserNotFound,
)
from domain.user import check_username
from web.models import PendingRegistration

ABANDONED_AFTER = timedelta(minutes=10)
logger = logging.getLogger(__name__)


def sign_up(chirp: Chirp, username: str, password: str, display_name: str = "") -> User:
    check_username(username)
    accounts = get_user_model()
    account = accounts(username=accounts.normalize_username(username))
    account.set_password(password)
    _remove_abandoned_account(chirp, username)
    taken = UsernameTaken(f"username {username!r} is already taken")
    try:
        with transaction.atomic():
            if accounts.objects.filter(username__iexact=username).exists():
                raise taken
            account.save()
            PendingRegistration.objects.create(user=account)
    except IntegrityError:  # saved meanwhile by another writer (PostgreSQL)
        raise taken from None
    try:
        chirp.register(username, display_name)
    except DomainError:  # refused: nothing stored
        account.delete()
        raise
    except Exception:  # stored or not? (an interrupt leaves it pending, as a crash)
        if not _registered_as(chirp, username):
            account.delete()
            raise
        logger.exception("@%s is registered; projecting the sign-up failed", username)
    PendingRegistration.objects.filter(user=account).delete()
    return account


def _registered_as(chirp: Chirp, username: str) -> bool:
    """Whether the event log holds ``username``'s registration, in this very
    spelling (another spelling is someone else's). Raises when the log cannot
    tell: the account then stays pending, for log-in to complete or refuse."""
    try:
        return chirp.commands.get_user(username).username == username
    except UserNotFound:
        return False


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

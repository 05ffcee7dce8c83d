"""Log-in backend: usernames match case-insensitively, and an account whose
sign-up did not finish is completed or refused (see ``web.services``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.http import HttpRequest

from web.runtime import get_chirp
from web.services import complete_pending_registration


class ChirpBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if username is None or password is None:
            return None
        account = get_user_model().objects.filter(username__iexact=username).first()
        if account is None:
            get_user_model()().set_password(password)  # same time as a wrong password
            return None
        if (
            account.check_password(password)
            and self.user_can_authenticate(account)
            and complete_pending_registration(get_chirp(), account)
        ):
            return account
        return None

"""Django models: only what Django's side of an account needs beyond auth's User."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PendingRegistration(models.Model):
    """An account whose ``UserRegistered`` event is not yet known to be stored.

    Sign-up writes to two stores, Django's user table and the event log. The
    account is created with this marker first, the event is saved second, and
    the marker is removed last; an account still marked is completed on log-in
    when its event exists, and removed when it does not (see ``web.services``).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pending_registration"
    )
    created_at = models.DateTimeField(auto_now_add=True)

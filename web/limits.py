"""Abuse limits: log-in and sign-up attempts per minute, per IP address and per
attempted username, counted by django-ratelimit in Django's shared cache.

The limits are Django settings read on each request (``CHIRP_LOGIN_LIMIT_PER_IP``
and the others in ``web.settings``), so tests can lower or raise them. Over a
limit, django-ratelimit raises ``Ratelimited``; its middleware answers with
``web.errors.too_many_attempts``, a 429 page. Only POSTs count: reading the
form is free. Why this library and this cache:
docs/decisions/rate-limits-on-log-in-and-sign-up.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponseBase
from django_ratelimit.decorators import ratelimit

from domain.user import username_key

View = Callable[..., HttpResponseBase]


def _per_minute(setting: str) -> Callable[[str, HttpRequest], str]:
    def rate(group: str, request: HttpRequest) -> str:
        return f"{int(getattr(settings, setting))}/m"

    return rate


def _attempted_username(group: str, request: HttpRequest) -> str:
    """Usernames match case-insensitively, so their attempts count together."""
    return username_key(request.POST.get("username", ""))


def _limited(view: View, group: str, key: object, setting: str) -> View:
    decorate = ratelimit(group=group, key=key, rate=_per_minute(setting), method="POST")
    return cast(View, decorate(view))


def limit_per_ip(group: str, setting: str) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        return _limited(view, f"{group}:ip", "ip", setting)

    return decorate


def limit_per_username(group: str, setting: str) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        return _limited(view, f"{group}:username", _attempted_username, setting)

    return decorate


# Django's own LoginView, wrapped: the address is checked first, then the name.
login = limit_per_ip("login", "CHIRP_LOGIN_LIMIT_PER_IP")(
    limit_per_username("login", "CHIRP_LOGIN_LIMIT_PER_USERNAME")(auth_views.LoginView.as_view())
)

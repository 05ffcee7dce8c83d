"""Django settings, read from the environment with safe defaults.

- ``CHIRP_DATA_DIR`` (``./data``): the embedded stores, Django's own SQLite
  database (accounts, sessions) and a generated secret key live here.
- ``DJANGO_SECRET_KEY``: used when given; otherwise one is generated once and
  kept in ``<data dir>/secret_key``.
- ``CHIRP_DEBUG=1`` turns debug on; it is off otherwise.
- ``CHIRP_ALLOWED_HOSTS``: comma-separated, default ``127.0.0.1,localhost``.
- ``DATABASE_URL``: PostgreSQL for Django's tables too (see chirp.bootstrap).
- ``CHIRP_CACHE_URL``: unset for Django's cache in its own database (the table
  ``chirp_cache``, created by a migration); ``redis://host:port/db`` (or
  ``rediss://``, ``unix://``) for one Redis server. Every web process shares it;
  the log-in and sign-up limits count attempts there.
- ``CHIRP_LOGIN_LIMIT_PER_IP`` (20), ``CHIRP_LOGIN_LIMIT_PER_USERNAME`` (5),
  ``CHIRP_SIGNUP_LIMIT_PER_IP`` (5): attempts per minute before a 429 page.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from chirp.settings import MEMORY, SQLITE_BUSY_TIMEOUT_SECONDS, PostgresParams

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("CHIRP_DATA_DIR", "data")).resolve()


def _secret_key() -> str:
    given = os.environ.get("DJANGO_SECRET_KEY", "")
    if given:
        return given
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


# Each web thread keeps its database connection from request to request, for
# up to 10 minutes, checked before a request reuses it: opening one per
# request (Django's default) cost the home page about a tenth of its time.
KEPT_CONNECTIONS = {"CONN_MAX_AGE": 600, "CONN_HEALTH_CHECKS": True}


def _databases() -> dict[str, dict[str, object]]:
    url = os.environ.get("DATABASE_URL", "")
    if url and url != MEMORY:
        params = PostgresParams.from_url(url)
        return {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": params.dbname,
                "HOST": params.host,
                "PORT": params.port,
                "USER": params.user,
                "PASSWORD": params.password,
                **KEPT_CONNECTIONS,
            }
        }
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "web.sqlite",
            **KEPT_CONNECTIONS,
            # Many requests write at once (sign-ups, log-ins, sessions): each
            # transaction takes the write lock when it begins, so none fails
            # upgrading a read to a write, and waits its turn for up to the
            # busy timeout; WAL lets reads go on while one writes.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                "init_command": "PRAGMA journal_mode=WAL",
            },
        }
    }


CACHE_TABLE = "chirp_cache"
DATABASE_CACHE_MAX_ENTRIES = 100_000
REDIS_CACHE_SCHEMES = ("redis", "rediss", "unix")


def caches_from_env(environ: Mapping[str, str]) -> dict[str, dict[str, object]]:
    """Django's cache: in Django's database, or on the Redis server named by
    ``CHIRP_CACHE_URL``. Either is shared by every web process."""
    url = environ.get("CHIRP_CACHE_URL", "").strip()
    if not url:
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": CACHE_TABLE,
                # Past MAX_ENTRIES (Django's default: 300) the cache deletes a
                # third of its entries, counts included: a flood of names or
                # addresses must not wipe the counts it is held back by.
                # Entries expire after about a minute.
                "OPTIONS": {"MAX_ENTRIES": DATABASE_CACHE_MAX_ENTRIES},
            }
        }
    if urlsplit(url).scheme not in REDIS_CACHE_SCHEMES:
        raise ImproperlyConfigured(
            f"CHIRP_CACHE_URL {url!r} must name one Redis server: a redis://, rediss://"
            " or unix:// URL (or be unset, for the cache in Django's database)"
        )
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "chirp-web",
        }
    }


def attempts_per_minute(environ: Mapping[str, str], name: str, default: int) -> int:
    """A limit of attempts per minute: a whole number, at least 1."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ImproperlyConfigured(
            f"{name} must be a whole number of attempts per minute, at least 1; it is {raw!r}"
        )
    return int(raw)


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("CHIRP_DEBUG", "") == "1"
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("CHIRP_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_ratelimit",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "web.read_your_writes.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "web.middleware.DomainErrorMiddleware",
    "web.middleware.RefuseInvalidUtf8Middleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
]

ROOT_URLCONF = "web.urls"
WSGI_APPLICATION = "web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASES = _databases()
CACHES = caches_from_env(os.environ)

# Log-in and sign-up attempts per minute (web.limits); over them, a 429 page.
CHIRP_LOGIN_LIMIT_PER_IP = attempts_per_minute(os.environ, "CHIRP_LOGIN_LIMIT_PER_IP", 20)
CHIRP_LOGIN_LIMIT_PER_USERNAME = attempts_per_minute(
    os.environ, "CHIRP_LOGIN_LIMIT_PER_USERNAME", 5
)
CHIRP_SIGNUP_LIMIT_PER_IP = attempts_per_minute(os.environ, "CHIRP_SIGNUP_LIMIT_PER_IP", 5)
RATELIMIT_VIEW = "web.errors.too_many_attempts"
# django-ratelimit asks for a cache with an atomic increment (E003) and names
# Memcached and django-redis only (W001). Django's RedisCache increments
# atomically; the database cache does not, so parallel attempts may be
# undercounted there. Why it is the default all the same, and why Redis
# (CHIRP_CACHE_URL) gives exact counts:
# docs/decisions/rate-limits-on-log-in-and-sign-up.md.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache":
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

AUTHENTICATION_BACKENDS = ["web.auth.ChirpBackend"]

"""Django settings, read from the environment with safe defaults.

- ``CHIRP_DATA_DIR`` (``./data``): the embedded stores, Django's own SQLite
  database (accounts, sessions) and a generated secret key live here.
- ``DJANGO_SECRET_KEY``: used when given; otherwise one is generated once and
  kept in ``<data dir>/secret_key``.
- ``CHIRP_DEBUG=1`` turns debug on; it is off otherwise.
- ``CHIRP_ALLOWED_HOSTS``: comma-separated, default ``127.0.0.1,localhost``.
- ``DATABASE_URL``: PostgreSQL for Django's tables too (see chirp.bootstrap).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from chirp.bootstrap import MEMORY, SQLITE_BUSY_TIMEOUT_SECONDS, PostgresParams

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
            }
        }
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "web.sqlite",
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
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "web.middleware.DomainErrorMiddleware",
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
